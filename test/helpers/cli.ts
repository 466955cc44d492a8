import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { main } from '../../cli/main.js';

/** Runs the CLI in-process and captures its output and exit code. */
export async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(argv, { out: (t) => (out += t), err: (t) => (err += t) });
  return { code, out, err };
}

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'tidegate.js');

/**
 * The built CLI as a shell runs it: a child process with its own environment (added to this
 * one's), its output read whole, or only its first chunk (`| head -1`: the pipe then closes).
 */
export function bin(
  args: string[],
  opts: { env?: Record<string, string>; cwd?: string; firstChunkOnly?: boolean } = {},
): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...opts.env },
      ...(opts.cwd ? { cwd: opts.cwd } : {}),
    });
    let out = '';
    let err = '';
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      if (opts.firstChunkOnly) child.stdout.destroy();
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, out, err }));
  });
}
