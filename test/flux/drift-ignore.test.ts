import { describe, expect, it } from 'vitest';
import { localSettings } from '../../shared/config/index.js';
import { readFlux } from '../../shared/flux/index.js';
import { fluxTree } from './fixture.js';

/** A HelmRelease's driftDetection.ignore, as fluxcd/flux2-monitoring-example writes it for kube-prometheus-stack. */
describe('HelmRelease driftDetection.ignore', () => {
  const release = (target: string) => `apiVersion: source.toolkit.fluxcd.io/v1
kind: HelmRepository
metadata: { name: prometheus-community, namespace: monitoring }
spec: { interval: 24h, url: https://prometheus-community.github.io/helm-charts }
---
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: { name: kube-prometheus-stack, namespace: monitoring }
spec:
  interval: 30m
  chart:
    spec:
      chart: kube-prometheus-stack
      version: "66.x"
      sourceRef: { kind: HelmRepository, name: prometheus-community }
  driftDetection:
    mode: enabled
    ignore:
      # Ignore "validated" annotation which is not inserted during install
      - paths: [ "/metadata/annotations/prometheus-operator-validated" ]
        target:
${target}
`;
  const read = (target: string) =>
    readFlux(
      fluxTree({ 'clusters/test/monitoring.yaml': release(target) }, 'flux-drift-'),
      [{ path: 'clusters/test', cluster: 'test' }],
      localSettings(),
    );

  it("becomes the target's ignore (same paths, same selector), with a note on how it differs from Flux", async () => {
    const flux = await read('          kind: PrometheusRule');
    expect(flux.unsupported).toEqual([]);
    const target = flux.targets.find((t) => t.name === 'monitoring-kube-prometheus-stack');
    expect(target?.drift).toBe('correct');
    expect(target?.ignore).toEqual([
      { paths: ['/metadata/annotations/prometheus-operator-validated'], target: { kind: 'PrometheusRule' } },
    ]);
    expect(flux.notes).toContainEqual(
      expect.objectContaining({
        field: 'spec.driftDetection.ignore[0].paths',
        message: expect.stringMatching(/never corrected after/),
      }),
    );
  });

  it('a selector tidegate cannot match (labelSelector) is refused by name', async () => {
    const flux = await read('          kind: PrometheusRule\n          labelSelector: app=x');
    expect(flux.unsupported.map((u) => [u.object, u.field])).toEqual([
      ['HelmRelease monitoring/kube-prometheus-stack', 'spec.driftDetection.ignore[0].target.labelSelector'],
    ]);
  });
});
