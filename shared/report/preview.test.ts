import { describe, expect, it } from 'vitest';
import type { SyncResult } from '../model/index.js';
import { PREVIEW_LIMITS, renderPreview } from './preview.js';

const result = (over: Partial<SyncResult>): SyncResult => ({
  target: 'apps',
  revision: { ref: 'refs/heads/change', sha: 'a'.repeat(40) },
  outcome: 'applied',
  changeSet: { changes: [] },
  health: { status: 'healthy', notReady: [] },
  startedAt: '2026-11-30T00:00:00Z',
  durationMs: 1,
  ...over,
});

describe('renderPreview bounds what it publishes', () => {
  it('shows only the first line of an error, shortened', () => {
    const { markdown } = renderPreview(1, [
      result({ outcome: 'failed', error: `helm template apps: parse error\n${'secret-line '.repeat(10)}` }),
    ]);
    expect(markdown).toContain('the plan fails: `helm template apps: parse error`');
    expect(markdown).not.toContain('secret-line');
    const { markdown: long } = renderPreview(1, [result({ outcome: 'failed', error: 'x'.repeat(5000) })]);
    expect(long).toContain(`\`${'x'.repeat(PREVIEW_LIMITS.error - 1)}…\``);
  });

  it('stays under GitHub’s comment size, saying that the rest is cut', () => {
    const changes = Array.from({ length: 5000 }, (_, i) => ({
      ref: { group: '', kind: 'ConfigMap', namespace: 'apps', name: `cm-${i}` },
      action: 'configured' as const,
      values: [{ path: 'data.v', from: 'a'.repeat(40), to: 'b'.repeat(40) }],
    }));
    const { markdown } = renderPreview(1, [result({ changeSet: { changes } })]);
    expect(markdown.length).toBeLessThanOrEqual(PREVIEW_LIMITS.comment);
    expect(markdown).toContain('… (the rest is cut');
    expect(markdown.endsWith('never shown._')).toBe(true);
  });
});
