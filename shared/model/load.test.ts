import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { MessageLoad, memoryTurn, withLoad } from './load.js';

/** A message of renders: each [documents, ms the render takes], then ms it holds them (apply, health). */
function message(log: string[], name: string, renders: Array<[number, number]>, holdMs = 50, held = 20) {
  return withLoad(new MessageLoad(held), async () => {
    for (const [i, [documents, ms]] of renders.entries()) {
      const end = await memoryTurn();
      log.push(`${name}${i} render`);
      await sleep(ms);
      end(documents);
      log.push(`${name}${i} rendered ${documents}`);
      await sleep(holdMs);
    }
    log.push(`${name} done`);
  });
}

describe('render turns: what messages handled at once hold together', () => {
  it('one render at a time in a process', async () => {
    const log: string[] = [];
    await Promise.all([message(log, 'a', [[1, 40]]), message(log, 'b', [[1, 40]])]);
    expect(log.slice(0, 3)).toEqual(['a0 render', 'a0 rendered 1', 'b0 render']);
  });

  it('a render waits while the others hold more than heldDocuments, and starts once they are done', async () => {
    const log: string[] = [];
    await Promise.all([message(log, 'a', [[30, 10]], 100), message(log, 'b', [[1, 10]])]);
    expect(log.indexOf('b0 render')).toBeGreaterThan(log.indexOf('a done'));
  });

  it('a dependsOn chain that rendered little first, then much: its second render waits for the other big one (both were admitted small)', async () => {
    const log: string[] = [];
    await Promise.all([
      message(log, 'a', [
        [1, 10],
        [30, 10],
      ]),
      message(log, 'b', [
        [1, 10],
        [30, 10],
      ]),
    ]);
    // Whichever rendered 30 first is done before the other renders its 30.
    const first = log.indexOf('a1 rendered 30') < log.indexOf('b1 rendered 30') ? 'a' : 'b';
    const other = first === 'a' ? 'b' : 'a';
    expect(log.indexOf(`${other}1 render`)).toBeGreaterThan(log.indexOf(`${first} done`));
  });

  it('what a message held from its earlier render is let go of at its next turn (no deadlock between two big ones)', async () => {
    const log: string[] = [];
    await Promise.all([
      message(log, 'a', [
        [30, 10],
        [30, 10],
      ]),
      message(log, 'b', [
        [30, 10],
        [30, 10],
      ]),
    ]);
    expect(log.filter((l) => l.endsWith('done')).sort()).toEqual(['a done', 'b done']);
  });

  it('a render that fails holds nothing, and one waiting for its turn stops when its signal aborts', async () => {
    const log: string[] = [];
    const big = message(log, 'a', [[30, 10]], 300);
    await sleep(30);
    const abort = new AbortController();
    const waiting = withLoad(new MessageLoad(20), () => memoryTurn(abort.signal));
    setTimeout(() => abort.abort(new Error('deadline')), 20);
    await expect(waiting).rejects.toThrow('deadline');
    await big;
    // A failed render (told 0) holds nothing: the next one does not wait.
    await withLoad(new MessageLoad(20), async () => (await memoryTurn())(0));
    const started = Date.now();
    await Promise.all([message(log, 'c', [[5, 10]], 200), message(log, 'd', [[5, 10]], 10)]);
    expect(Date.now() - started).toBeLessThan(200 + 150);
  });

  it('outside a message (command line, dev server) a render never waits', async () => {
    const holder = message([], 'a', [[30, 10]], 200);
    await sleep(20);
    const started = Date.now();
    (await memoryTurn())(1);
    expect(Date.now() - started).toBeLessThan(50);
    await holder;
  });

  it('a turn asked for inside the same message’s turn does not wait for itself', async () => {
    await withLoad(new MessageLoad(20), async () => {
      const outer = await memoryTurn();
      const inner = await memoryTurn();
      inner(0);
      outer(1);
    });
  });
});
