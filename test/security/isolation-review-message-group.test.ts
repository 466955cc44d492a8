import { describe, expect, it } from 'vitest';
import { messageKeys } from '../../shared/usecases/index.js';
import type { QueueMessage, RemoveMessage, SyncMessage } from '../../shared/model/index.js';

/**
 * A target name is unique per cluster only (README: "unique on its cluster"): repository B may name a
 * target `infra` on cluster `staging` while repository A's `infra` runs on `prod`, both tracked by the
 * same deployment. The SQS FIFO message group of a sync was `target:<set or target name>`
 * (messageKeys, shared/usecases/queue.ts baseKeys 'sync' case; a removal's `target:<name>`), with
 * neither the repository nor the cluster in it. SQS hands out the messages of one group one at a time: every sync of B's `infra`
 * (which B makes slow at will: `wait: true` with a `timeout` up to the Lambda's 15 minutes on a
 * Deployment that never gets ready, or a render running to `render.timeout`) holds the group, and
 * A's pushes to its own `infra` wait behind B's, push after push. The deduplication id
 * (`sync:<chain>@<sha>`) had no repository either (a fork shares its commits: same SHA, same id, one
 * of the two dropped by SQS as a repeat).
 * Safe: a sync or removal message of one repository never shares a message group (nor a deduplication
 * id) with another repository's, while one target's messages (its syncs, its set's, its removal)
 * still share one group, so SQS keeps them in order; every id stays within SQS's limits.
 */
describe("one repository's sync messages never share a message group with another repository's", () => {
  it('same target name in repositories A and B (on different clusters): different groups and dedup ids', () => {
    const revision = { ref: 'refs/heads/main', sha: 'a'.repeat(40) };
    const a: SyncMessage = {
      type: 'sync',
      repo: 'https://github.com/acme/platform.git',
      target: 'infra',
      revision,
      reason: 'push',
    };
    const b: SyncMessage = { ...a, repo: 'https://github.com/other/tooling.git' };
    expect(messageKeys(b).group).not.toBe(messageKeys(a).group);
    expect(messageKeys(b).dedup).not.toBe(messageKeys(a).dedup);
    // A set named after a target of another repository: same answer.
    const bSet: SyncMessage = { ...b, target: 'slow', chain: ['infra', 'slow'], set: 'infra' };
    expect(messageKeys(bSet).group).not.toBe(messageKeys(a).group);
    expect(messageKeys({ ...bSet, chain: ['infra'] }).dedup).not.toBe(messageKeys(a).dedup);
  });

  it('removals: another repository (or another cluster) never shares a group or a dedup id', () => {
    const revision = { ref: 'refs/heads/main', sha: 'b'.repeat(40) };
    const a: RemoveMessage = {
      type: 'remove',
      repo: 'https://github.com/acme/platform.git',
      cluster: 'prod',
      target: 'infra',
      revision,
    };
    const b: RemoveMessage = { ...a, repo: 'https://github.com/other/tooling.git', cluster: 'staging' };
    const bSameCluster: RemoveMessage = { ...b, cluster: 'prod' };
    for (const other of [b, bSameCluster]) {
      expect(messageKeys(other).group).not.toBe(messageKeys(a).group);
      expect(messageKeys(other).dedup).not.toBe(messageKeys(a).dedup);
    }
    // One repository's removals of one name on two clusters are two pieces of work, not repeats.
    expect(messageKeys({ ...a, cluster: 'staging' }).dedup).not.toBe(messageKeys(a).dedup);
  });

  it("one target's messages still share one group (ordered), whatever the spelling of its repository URL", () => {
    const revision = (c: string) => ({ ref: 'refs/heads/main', sha: c.repeat(40) });
    const sync: SyncMessage = {
      type: 'sync',
      repo: 'https://github.com/acme/platform.git',
      target: 'infra',
      revision: revision('a'),
      reason: 'push',
    };
    const same: QueueMessage[] = [
      sync,
      { ...sync, revision: revision('c'), reason: 'poll', bucket: 7 }, // a later revision
      { ...sync, deferrals: 2 }, // a copy handed back
      { ...sync, repo: 'git@github.com:Acme/platform.git' }, // another spelling of the same repository
      { ...sync, repo: 'https://github.com/acme/platform/' },
      // A dependant's sync of the set `infra` (dependsOn): behind infra's own, in order.
      { ...sync, target: 'apps', set: 'infra', revision: revision('d') },
      { ...sync, chain: ['infra', 'apps'] },
      // The removal of `infra` (moved to another cluster) never overlaps a sync of it.
      { type: 'remove', repo: sync.repo, cluster: 'prod', target: 'infra', revision: revision('e') },
    ];
    expect(new Set(same.map((m) => messageKeys(m).group)).size).toBe(1);
    // Only true repeats share a deduplication id.
    expect(messageKeys(same[3] as QueueMessage).dedup).toBe(messageKeys(sync).dedup);
    expect(new Set([0, 1, 2, 5, 6, 7].map((i) => messageKeys(same[i] as QueueMessage).dedup)).size).toBe(6);
  });

  it('every group and deduplication id fits SQS (at most 128 characters of its alphabet), long names too', () => {
    const long = 'x'.repeat(63);
    const msgs: QueueMessage[] = [
      {
        type: 'sync',
        repo: `https://git.example.com/${'deep/'.repeat(40)}repo.git`,
        target: long,
        chain: [long, `${long.slice(1)}y`, `${long.slice(2)}zz`],
        set: long,
        revision: { ref: 'refs/heads/main', sha: 'f'.repeat(40) },
        reason: 'poll',
        bucket: 123456789,
        deferrals: 99,
      },
      {
        type: 'remove',
        repo: 'https://github.com/acme/platform.git',
        cluster: `prod east ${'é'.repeat(80)}`,
        target: long,
        revision: { ref: 'refs/heads/main', sha: 'f'.repeat(40) },
      },
    ];
    for (const m of msgs)
      for (const id of Object.values(messageKeys(m)))
        expect(id).toMatch(/^[A-Za-z0-9!"#$%&'()*+,\-./:;<=>?@[\\\]^_`{|}~]{1,128}$/);
    // Two long chains differing only past the readable part: still two ids.
    const [first] = msgs as [SyncMessage];
    expect(messageKeys({ ...first, chain: [long, long, `${long}a`] }).dedup).not.toBe(
      messageKeys({ ...first, chain: [long, long, `${long}b`] }).dedup,
    );
  });
});
