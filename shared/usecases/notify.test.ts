import { describe, expect, it } from 'vitest';
import type { Change, SyncResult } from '../model/index.js';
import { resultEvent } from './notify.js';

const SHA = 'c'.repeat(40);
const cm = (name: string, action: Change['action'], drift = false): Change => ({
  ref: { group: '', kind: 'ConfigMap', namespace: 'web', name },
  action,
  ...(drift ? { drift: true } : {}),
});
const result = (over: Partial<SyncResult>): SyncResult => ({
  target: 'web',
  revision: { ref: 'refs/heads/main', sha: SHA },
  outcome: 'applied',
  changeSet: { changes: [cm('a', 'created')] },
  health: { status: 'healthy', notReady: [] },
  startedAt: new Date(0).toISOString(),
  durationMs: 10,
  ...over,
});
const where = {
  repo: 'https://x-access-token:ghs_secret@github.com/acme/gitops.git',
  how: '`tidegate approve web cc`',
};

describe('which sync results are news, and what their notification says', () => {
  it.each<[string, Partial<SyncResult>, string | undefined, string]>([
    ['a change applied', {}, 'applied', '1 created, 0 configured, 0 deleted'],
    ['a rollout started', { outcome: 'progressing' }, 'applied', '1 created'],
    [
      'only drifted objects put back',
      { changeSet: { changes: [cm('a', 'configured', true)] } },
      'drift-corrected',
      '0 created, 1 configured',
    ],
    [
      'a change and drift together',
      { changeSet: { changes: [cm('a', 'configured', true), cm('b', 'created')] } },
      'applied',
      '1 created, 1 configured',
    ],
    [
      'a failure',
      { outcome: 'failed', error: 'ConfigMap/web/a: refused\nsecond line' },
      'failed',
      'ConfigMap/web/a: refused',
    ],
    [
      'a hold, with how to approve',
      { outcome: 'held', heldFor: 'waiting for a manual approval' },
      'held',
      'To approve: `tidegate approve web cc`',
    ],
    [
      'a rollback after failed health',
      { outcome: 'failed', rolledBackTo: { ref: 'refs/heads/main', sha: 'b'.repeat(40) } },
      'rolled-back',
      'tidegate release web',
    ],
    ['nothing changed', { outcome: 'unchanged', changeSet: { changes: [cm('a', 'unchanged')] } }, undefined, ''],
    ['an outcome this revision had before (the poll)', { outcome: 'failed', error: 'x', seen: true }, undefined, ''],
    ['a rollout still progressing, seen before', { outcome: 'progressing', seen: true }, undefined, ''],
    [
      'drift corrected again at the same revision: each is an edit undone',
      { changeSet: { changes: [cm('a', 'configured', true)] }, seen: true },
      'drift-corrected',
      '1 configured',
    ],
    ['a suspended target', { outcome: 'suspended' }, undefined, ''],
    ['a pinned target', { outcome: 'pinned' }, undefined, ''],
  ])('%s', (_name, over, kind, text) => {
    const e = resultEvent(result(over), where, new Date(0));
    expect(e?.kind).toBe(kind);
    if (!e) return;
    expect(e.text).toContain(text);
    expect(e.sha).toBe(SHA);
    expect(e.url).toBe(`https://github.com/acme/gitops/commit/${SHA}`);
    expect(JSON.stringify(e)).not.toContain('ghs_secret'); // the repository URL's credentials never travel
  });
});
