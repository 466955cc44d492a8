import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

const MiB = 1024 * 1024;

/** What a run of kustomize or helm may take: time, output, and resident memory (the tool and its children). */
export interface ToolBudget {
  timeoutMs: number;
  maxOutputBytes: number;
  maxMemoryBytes: number;
  signal?: AbortSignal | undefined;
  /** How often the memory is sampled (default 25 ms). */
  pollMs?: number | undefined;
}

/** Why a tool run failed: a limit (the tool was stopped at it), the caller's abort, or the tool's own failure. */
export type ToolFailure =
  | { kind: 'output' }
  | { kind: 'timeout' }
  | { kind: 'memory'; peakBytes: number }
  | { kind: 'aborted'; stderr: string }
  | { kind: 'failed'; stderr: string; code: number | null; signal: NodeJS.Signals | null }
  | { kind: 'spawn'; error: Error };

export class ToolRunError extends Error {
  constructor(
    readonly failure: ToolFailure,
    options?: { cause?: unknown },
  ) {
    super(failure.kind, options);
  }
}

const readOr = (path: string): string => {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
};
const listOr = (path: string): string[] => {
  try {
    return readdirSync(path);
  } catch {
    return [];
  }
};

/** A process and all its descendants (the children of each of its threads, from /proc). */
function processTree(pid: number): number[] {
  const seen = new Set<number>();
  const stack = [pid];
  while (stack.length > 0) {
    const p = stack.pop() as number;
    if (seen.has(p)) continue;
    seen.add(p);
    for (const task of listOr(`/proc/${p}/task`))
      for (const child of readOr(`/proc/${p}/task/${task}/children`).split(' '))
        if (child.trim()) stack.push(Number(child));
  }
  return [...seen];
}

/** The resident memory of a process and its descendants, in bytes (0 where /proc does not have them). */
export function treeRss(pid: number): number {
  let kib = 0;
  for (const p of processTree(pid)) kib += Number(/^VmRSS:\s+(\d+) kB/m.exec(readOr(`/proc/${p}/status`))?.[1] ?? 0);
  return kib * 1024;
}

/** At most this much of a tool's standard error is kept (its message is what matters). */
const STDERR_KEPT = 64 * 1024;

/**
 * Runs a tool (kustomize, helm) to completion within its budget: its output collected up to the
 * output limit, its time up to the timeout, and its resident memory with that of its descendants
 * sampled from /proc every pollMs. Past any of them the tool and its descendants are killed at once
 * and the run fails with the limit it passed. Go tools also get GOMEMLIMIT at three quarters of the
 * memory limit: a soft limit that makes them collect garbage before the hard one is reached.
 */
export function runTool(
  command: string,
  args: readonly string[],
  opts: { cwd: string; env: Record<string, string>; budget: ToolBudget },
): Promise<{ stdout: string; peakBytes: number }> {
  const { budget } = opts;
  return new Promise((resolve, reject) => {
    if (budget.signal?.aborted) {
      reject(new ToolRunError({ kind: 'aborted', stderr: '' }));
      return;
    }
    const softLimit = Math.max(1, Math.floor((budget.maxMemoryBytes * 3) / 4 / MiB));
    const child = spawn(command, args, {
      cwd: opts.cwd,
      env: { ...opts.env, GOMEMLIMIT: `${softLimit}MiB` },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const stdout: Buffer[] = [];
    let outBytes = 0;
    let stderr = '';
    let peak = 0;
    let failure: ToolFailure | undefined;
    // A limit stops the tool and whatever it started (it stays in the caller's process group, so an
    // interrupted CLI stops it too).
    const stop = (why: ToolFailure): void => {
      failure ??= why;
      for (const pid of child.pid === undefined ? [] : processTree(child.pid).reverse()) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone already
        }
      }
    };
    const sample = (): void => {
      if (child.pid === undefined || failure) return;
      const rss = treeRss(child.pid);
      peak = Math.max(peak, rss);
      if (rss > budget.maxMemoryBytes) stop({ kind: 'memory', peakBytes: peak });
    };
    const watch = setInterval(sample, budget.pollMs ?? 25);
    const timer = setTimeout(() => stop({ kind: 'timeout' }), budget.timeoutMs);
    const onAbort = (): void => stop({ kind: 'aborted', stderr });
    budget.signal?.addEventListener('abort', onAbort, { once: true });
    child.stdout.on('data', (chunk: Buffer) => {
      if (failure) return;
      outBytes += chunk.byteLength;
      if (outBytes > budget.maxOutputBytes) {
        stop({ kind: 'output' });
        stdout.length = 0;
        return;
      }
      stdout.push(chunk);
    });
    child.stderr.on('data', (chunk: Buffer) => {
      if (stderr.length < STDERR_KEPT) stderr += chunk.toString('utf8').slice(0, STDERR_KEPT - stderr.length);
    });
    const done = (): void => {
      clearInterval(watch);
      clearTimeout(timer);
      budget.signal?.removeEventListener('abort', onAbort);
    };
    child.on('error', (error) => {
      done();
      reject(new ToolRunError(failure ?? { kind: 'spawn', error }, { cause: error }));
    });
    child.on('close', (code, signal) => {
      done();
      if (failure?.kind === 'aborted') failure = { kind: 'aborted', stderr };
      if (failure) reject(new ToolRunError(failure));
      else if (code !== 0) reject(new ToolRunError({ kind: 'failed', stderr, code, signal }));
      else resolve({ stdout: Buffer.concat(stdout).toString('utf8'), peakBytes: peak });
    });
  });
}
