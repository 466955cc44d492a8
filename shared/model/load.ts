import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * What one message being handled holds in memory, as far as it is known: the documents of the
 * render it holds, or undefined while that is not known (it has not come to a render yet, or is
 * rendering). A worker handling several messages at once keeps what they hold together bounded
 * (aws/sqs-batch.ts starts another message only while every running one is known and small;
 * memoryTurn lets one render run at a time, and only while the others hold little).
 */
export class MessageLoad {
  documents: number | undefined = undefined;
  /** @param heldDocuments a render starts only while the other messages hold at most this many documents */
  constructor(readonly heldDocuments: number) {}
}

const current = new AsyncLocalStorage<MessageLoad>();
/** The messages being handled in this process, and the one rendering. */
const active = new Set<MessageLoad>();
let rendering: MessageLoad | undefined;
let waiters: Array<() => void> = [];

/** Something held changed: whoever waits for a render turn looks again. */
function changed(): void {
  const woken = waiters;
  waiters = [];
  for (const wake of woken) wake();
}

/** Resolves at the next change; rejects when the signal aborts first. */
function nextChange(signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason as Error);
    const onAbort = (): void => reject(signal?.reason as Error);
    signal?.addEventListener('abort', onAbort, { once: true });
    waiters.push(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    });
  });
}

/** Resolves when what a message holds next changes (a render or fetch ends, a message ends). */
export const loadChanged = (): Promise<void> => nextChange(undefined);

const heldBesides = (load: MessageLoad): number => {
  let held = 0;
  for (const other of active) if (other !== load) held += other.documents ?? 0;
  return held;
};

/** Runs a message's handling with its load, which its renders report to. */
export async function withLoad<T>(load: MessageLoad, fn: () => Promise<T>): Promise<T> {
  active.add(load);
  try {
    return await current.run(load, fn);
  } finally {
    active.delete(load);
    if (rendering === load) rendering = undefined;
    changed();
  }
}

/**
 * Waits for this message's turn to render (or to fetch a target's own source, whose packs are held in
 * memory while they arrive): no other render or fetch under way in this process, and the other
 * messages holding at most `heldDocuments` together. What the message held from an earlier render
 * (a target before, in a dependsOn chain) is let go of meanwhile. Returns the end of the turn, told
 * the documents the message holds from then on (0 when it failed, or after a fetch). Outside a
 * message (the command line, the dev server) there is nothing to wait for.
 */
export async function memoryTurn(signal?: AbortSignal): Promise<(documents: number) => void> {
  const load = current.getStore();
  // Outside a message, or inside this message's own turn (nothing waits for itself).
  if (!load || rendering === load) return () => undefined;
  load.documents = 0;
  changed();
  while (rendering !== undefined || heldBesides(load) > load.heldDocuments) await nextChange(signal);
  rendering = load;
  load.documents = undefined;
  let ended = false;
  return (documents) => {
    if (ended) return;
    ended = true;
    load.documents = documents;
    if (rendering === load) rendering = undefined;
    changed();
  };
}
