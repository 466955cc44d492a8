import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { tempTree } from '../helpers/files.js';

const BIN = fileURLToPath(new URL('../../bin/tidegate.js', import.meta.url));

/** The CLI as a shell runs it, its output read by a reader that stops after the first chunk (`| head -1`). */
function firstChunkThenClose(args: string[]): Promise<{ code: number | null; err: string; first: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    let first = '';
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.stdout.once('data', (c: Buffer) => {
      first = c.toString();
      child.stdout.destroy();
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, err, first }));
  });
}

describe('output into a pipe that closes early', () => {
  it('`tidegate render … | head -1`: the output ends quietly, exit 0, no EPIPE error', async () => {
    const many = Array.from({ length: 3000 }, (_, i) =>
      stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: `cm-${i}` }, data: { k: 'v'.repeat(100) } }),
    ).join('---\n');
    const dir = tempTree({
      'tidegate.yaml': stringify({ targets: [{ name: 'a', cluster: 'c', path: 'apps' }] }),
      'apps/many.yaml': many,
    });
    const res = await firstChunkThenClose(['render', 'a', '--dir', dir, '--kubeconfig', '/nonexistent/kubeconfig']);
    expect(res.first).toMatch(/^# Source: apps\/many\.yaml/);
    expect(res.err).not.toMatch(/EPIPE|Error:/);
    expect(res.code).toBe(0);
  }, 60_000);
});
