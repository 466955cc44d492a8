import { setTimeout as sleep } from 'node:timers/promises';
import { refOf, type HealthStatus, type KubeObject, type ObjectHealth } from '../model/index.js';
import { assess } from './rules.js';

export interface HealthReport {
  status: HealthStatus;
  /** Objects not healthy at the end, with the reason. */
  notReady: ObjectHealth[];
}

export interface WaitOptions {
  /** Bound for the whole wait; 0 assesses once. */
  timeoutMs: number;
  signal?: AbortSignal | undefined;
  /** First poll interval; doubles up to 2 s. */
  intervalMs?: number;
  /** Called each round something is still progressing, with what. */
  onWait?: (notReady: HealthReport['notReady']) => void;
}

/**
 * Assesses objects and, while some are progressing, re-reads only those until all are healthy,
 * one fails, the timeout passes or the signal aborts. Never waits without a bound.
 */
export async function waitForHealth(
  objects: readonly KubeObject[],
  read: (obj: KubeObject) => Promise<KubeObject | undefined>,
  opts: WaitOptions,
): Promise<HealthReport> {
  const deadline = Date.now() + opts.timeoutMs;
  let current = [...objects];
  let interval = opts.intervalMs ?? 250;
  for (;;) {
    const assessed = current.map((obj) => ({ obj, a: assess(obj) }));
    const failed = assessed.filter((x) => x.a.status === 'failed');
    const progressing = assessed.filter((x) => x.a.status === 'progressing');
    const report = (status: HealthStatus, list: typeof assessed): HealthReport => ({
      status,
      notReady: list.map((x) => ({ ref: refOf(x.obj), status: x.a.status, message: x.a.message })),
    });
    if (failed.length > 0) return report('failed', [...failed, ...progressing]);
    if (progressing.length === 0) return { status: 'healthy', notReady: [] };
    if (Date.now() + interval > deadline || opts.signal?.aborted) return report('progressing', progressing);
    opts.onWait?.(report('progressing', progressing).notReady);
    await sleep(interval, undefined, opts.signal ? { signal: opts.signal } : {}).catch(() => undefined);
    interval = Math.min(interval * 2, 2000);
    const reread = await Promise.all(progressing.map(async (x) => (await read(x.obj)) ?? x.obj));
    current = reread;
  }
}
