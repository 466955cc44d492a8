import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * What one message being handled holds in memory, as far as it is known: the documents of the
 * render it holds, or undefined while it may still grow (it has not rendered yet, or is rendering).
 * A worker that handles several messages at once starts another only while every running one is
 * known and small (aws/sqs-batch.ts), so messages handled together never hold much more than one
 * message may alone.
 */
export class MessageLoad {
  documents: number | undefined = undefined;
}

const current = new AsyncLocalStorage<MessageLoad>();

/** Runs a message's handling with its load, which the render reports to. */
export function withLoad<T>(load: MessageLoad, fn: () => Promise<T>): Promise<T> {
  return current.run(load, fn);
}

/** A render starts: what the message holds is not known until it ends. */
export function loadRendering(): void {
  const load = current.getStore();
  if (load) load.documents = undefined;
}

/** A render ended with this many documents, which the message holds from now on. */
export function loadRendered(documents: number): void {
  const load = current.getStore();
  if (load) load.documents = documents;
}
