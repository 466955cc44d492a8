import type { KubeObject } from '../../shared/model/index.js';
import { RELOADER as R } from '../../shared/reload/annotations.js';

/**
 * A Deployment whose one container reads ConfigMaps and Secrets through envFrom, with Reloader's
 * auto annotation (or the annotations given: `{}` for none).
 */
export function reloadingDeployment(
  name: string,
  from: { configMaps?: readonly string[]; secrets?: readonly string[]; optionalSecrets?: boolean },
  extra: { namespace?: string; annotations?: Record<string, string>; image?: string } = {},
): KubeObject {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: {
      name,
      ...(extra.namespace ? { namespace: extra.namespace } : {}),
      annotations: extra.annotations ?? { [R.auto]: 'true' },
    },
    spec: {
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: {
          containers: [
            {
              name: 'app',
              image: extra.image ?? 'registry.example/app:1',
              envFrom: [
                ...(from.configMaps ?? []).map((n) => ({ configMapRef: { name: n } })),
                ...(from.secrets ?? []).map((n) => ({
                  secretRef: { name: n, ...(from.optionalSecrets ? { optional: true } : {}) },
                })),
              ],
            },
          ],
        },
      },
    },
  };
}

/**
 * A Deployment's pod template as JSON: what a rollout changes. (Not the generation: a Deployment's
 * generation also moves when only its annotations change, e.g. the reload baseline.)
 */
export async function templateOf(
  client: { get: (apiVersion: string, kind: string, ns: string, name: string) => Promise<KubeObject | undefined> },
  ns: string,
  name = 'w',
): Promise<string> {
  const spec = (await client.get('apps/v1', 'Deployment', ns, name))?.['spec'] as { template?: unknown } | undefined;
  return JSON.stringify(spec?.template ?? null);
}
