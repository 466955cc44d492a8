import { describe, expect, it } from 'vitest';
import { runTool, ToolRunError, treeRss, type ToolFailure } from './tool.js';

const MiB = 1024 * 1024;
const node = process.execPath;
/** A script that allocates (and touches) 16 MiB every 20 ms, keeping all of it. */
const HOG = 'const k=[];setInterval(()=>k.push(Buffer.alloc(16*1024*1024,1)),20)';
const budget = { timeoutMs: 10_000, maxOutputBytes: MiB, maxMemoryBytes: 256 * MiB };

async function failure(command: string, args: string[], over: Partial<typeof budget> = {}, signal?: AbortSignal) {
  const started = Date.now();
  const result = await runTool(command, args, {
    cwd: process.cwd(),
    env: { PATH: process.env['PATH'] ?? '' },
    budget: { ...budget, ...over, signal },
  }).then(
    () => undefined,
    (err: unknown) => (err instanceof ToolRunError ? err.failure : { kind: 'other', err }),
  );
  return { failure: result as ToolFailure | undefined, ms: Date.now() - started };
}

describe('runTool: a tool within its time, output and memory', () => {
  it.each<[string, string, string[], Partial<typeof budget>, ToolFailure['kind'] | undefined]>([
    ['a quick tool', node, ['-e', 'console.log("ok")'], {}, undefined],
    ['output past the limit', node, ['-e', 'process.stdout.write("x".repeat(2*1024*1024))'], {}, 'output'],
    ['past the timeout', node, ['-e', 'setTimeout(()=>{},60000)'], { timeoutMs: 200 }, 'timeout'],
    ['memory past the limit, printing nothing', node, ['-e', HOG], {}, 'memory'],
    ['memory in a child of the tool (counted with it)', '/bin/sh', ['-c', `"${node}" -e '${HOG}'`], {}, 'memory'],
    ['a failing tool: its message', node, ['-e', 'console.error("bad chart");process.exit(3)'], {}, 'failed'],
  ])('%s', async (_name, command, args, over, kind) => {
    const { failure: f, ms } = await failure(command, args, over);
    expect(f?.kind).toBe(kind);
    expect(ms).toBeLessThan(8000);
    if (f?.kind === 'memory') {
      expect(f.peakBytes).toBeGreaterThan(256 * MiB);
      expect(f.peakBytes).toBeLessThan(256 * MiB + 128 * MiB);
    }
    if (f?.kind === 'failed') expect(f.stderr.trim()).toBe('bad chart');
  });

  it('Go tools get GOMEMLIMIT at three quarters of the memory limit', async () => {
    const out = await runTool(node, ['-e', 'console.log(process.env.GOMEMLIMIT)'], {
      cwd: process.cwd(),
      env: {},
      budget,
    });
    expect(out.stdout.trim()).toBe('192MiB');
  });

  it("the caller's abort stops it", async () => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);
    const { failure: f, ms } = await failure(node, ['-e', 'setTimeout(()=>{},60000)'], {}, controller.signal);
    expect(f?.kind).toBe('aborted');
    expect(ms).toBeLessThan(5000);
  });

  it('treeRss reads this process from /proc', () => {
    expect(treeRss(process.pid)).toBeGreaterThan(10 * MiB);
    expect(treeRss(2 ** 22 + 12345)).toBe(0);
  });
});
