import { describe, expect, it } from 'vitest';
import { localSettings } from '../../shared/config/index.js';
import { render } from '../../shared/render/index.js';
import { tempTree } from '../helpers/files.js';

/**
 * Patches and images are applied by kustomize over the rendered objects, written out and read
 * back: every value not patched must come back as it was. A YAML writer folds a two-line string
 * indented 60 columns deep (a CRD's schema description) into one with a leading newline, and
 * leaves `Off` unquoted for YAML 1.1 readers (found on envoy-gateway's CRDs, a postRenderers
 * patch making 16 CRDs "configured").
 */
describe('the overlay of patches and images', () => {
  it('leaves every value it does not patch as it was (deep multi-line strings, YAML 1.1 words, leading spaces)', async () => {
    const description = "Represents a key's relationship to a set of values.\nValid operators are In, NotIn, Exists.";
    let deep: Record<string, unknown> = { description, mode: 'Off', lead: ' leading space', block: 'a\n  b\n' };
    for (let i = 0; i < 30; i++) deep = { [`level${i}`]: deep };
    const crd = { apiVersion: 'example.dev/v1', kind: 'Schema', metadata: { name: 'deep' }, spec: deep };
    const cm = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'patched' }, data: { a: '1' } };
    // Written as JSON (a YAML subset): a YAML writer would change the value before the render reads it.
    const root = tempTree({ 'app/all.yaml': `${JSON.stringify(crd)}\n---\n${JSON.stringify(cm)}` });
    const settings = localSettings();
    const { objects } = await render({
      root,
      path: 'app',
      mode: 'yaml',
      substitute: {},
      defaultReleaseName: 'x',
      settings,
      kustomize: {
        patches: [
          {
            patch: '- op: add\n  path: /metadata/labels\n  value: { patched: "yes" }\n',
            target: { kind: 'ConfigMap' },
          },
        ],
        images: [],
      },
    });
    expect(objects.find((o) => o.object.kind === 'Schema')?.object).toEqual(crd);
    expect(objects.find((o) => o.object.kind === 'ConfigMap')?.object.metadata.labels).toEqual({ patched: 'yes' });
  });
});
