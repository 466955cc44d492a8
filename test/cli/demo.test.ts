import { describe, expect, it } from 'vitest';
import { main } from '../../cli/main.js';

describe('npm start (tidegate demo)', () => {
  it('runs the whole loop on its own embedded servers to completion', async () => {
    let out = '';
    const code = await main(['demo', '--once'], { out: (t) => (out += t), err: (t) => (out += t) });
    expect(code).toBe(0);
    expect(out).toMatch(/ready: kube-apiserver v1\.34\.\d+ \(etcd 3\.6\.\d+\)/);
    expect(out).toMatch(/step 1 {2}initial sync[\s\S]*\+ Deployment\.apps\/demo\/podinfo/);
    expect(out).toMatch(
      /step 2 [\s\S]*~ Deployment\.apps\/demo\/podinfo {2}\(spec\.replicas\)[\s\S]*the cluster now runs replicas=3/,
    );
    expect(out).toMatch(/step 3 [\s\S]*drift corrected[\s\S]*replicas=3 again/);
    expect(out).toMatch(
      /step 4 [\s\S]*↻ Deployment\.apps\/demo\/podinfo rolled: ConfigMap\/podinfo-config changed[\s\S]*Deployment generation (\d+) → (\d+)/,
    );
    const [, before, after] = /Deployment generation (\d+) → (\d+)/.exec(out) ?? [];
    expect(Number(after)).toBe(Number(before) + 1);
    expect(out).toMatch(/podinfo: applied main@[0-9a-f]{12} at .*, health healthy; 3 objects/);
    expect(out).toMatch(
      /step 5 [\s\S]*commit [0-9a-f]+ by tidegate: tidegate: update image podinfo \| - podinfo: [^ ]+:6\.5\.0 → [^ ]+:6\.5\.1/,
    );
    expect(out).toMatch(/the Deployment now runs 127\.0\.0\.1:\d+\/demo\/podinfo:6\.5\.1/);
    expect(out).toMatch(/status page: http:\/\/127\.0\.0\.1:\d+\/ \(HTTP 200, 1 target\(s\), [1-9]\d* bars plotted\)/);
    expect(out).toMatch(/demo finished: 5 syncs, all succeeded/);
    expect(out).not.toContain('until Ctrl-C');
  }, 120_000);
});
