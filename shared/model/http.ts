/**
 * A response body read up to `left.bytes` (decremented as it arrives, so one budget can span several
 * responses); past it the stream is cancelled and `tooMuch()` thrown: a server cannot flood the worker.
 */
export async function boundedBody(res: Response, left: { bytes: number }, tooMuch: () => Error): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  const reader = res.body?.getReader();
  for (let next = await reader?.read(); next && !next.done; next = await reader?.read()) {
    left.bytes -= next.value.byteLength;
    if (left.bytes < 0) {
      await reader?.cancel();
      throw tooMuch();
    }
    chunks.push(next.value);
  }
  return Buffer.concat(chunks);
}

/** A signal that fires with `signal` or after `ms`, whichever comes first. */
export const within = (ms: number, signal?: AbortSignal): AbortSignal =>
  signal ? AbortSignal.any([signal, AbortSignal.timeout(ms)]) : AbortSignal.timeout(ms);
