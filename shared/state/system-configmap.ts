import { KubeApiError, type KubeClient } from '../cluster/index.js';
import { MANAGED_BY_LABEL, SYSTEM_NAMESPACE } from '../apply/index.js';
import type { KubeObject } from '../model/index.js';
import { ensureSystemNamespace } from './state.js';

/** One JSON value kept under `key` in a ConfigMap of tidegate-system (the previews register, the pipeline's heartbeat). */
export interface SystemValue {
  name: string;
  key: string;
  /** Labels of the ConfigMap besides managed-by (to list such ConfigMaps together). */
  labels?: Record<string, string> | undefined;
}

/** The text kept under the value's key, undefined when the ConfigMap or the key is absent. */
export async function readSystemValue(
  client: KubeClient,
  where: SystemValue,
  signal?: AbortSignal,
): Promise<{ text: string | undefined; cm: KubeObject | undefined }> {
  if (!client.resourceFor('v1', 'ConfigMap')) await client.discover(signal);
  const cm = await client.get('v1', 'ConfigMap', SYSTEM_NAMESPACE, where.name, signal);
  return { text: (cm?.['data'] as Record<string, string> | undefined)?.[where.key], cm };
}

/**
 * Read, change, write with the read's resourceVersion as precondition (created with the namespace
 * when absent), again on a conflict, at most `attempts` times; then `exhausted` is thrown.
 * `change` gets the text read and returns the text to write (undefined: write nothing) and the value to return.
 */
export async function updateSystemValue<T>(
  client: KubeClient,
  where: SystemValue & { attempts: number; exhausted: () => Error },
  change: (text: string | undefined) => { text?: string | undefined; value: T },
  signal?: AbortSignal,
): Promise<T> {
  for (let attempt = 1; attempt <= where.attempts; attempt++) {
    const { text, cm } = await readSystemValue(client, where, signal);
    const next = change(text);
    if (next.text === undefined) return next.value;
    const obj: KubeObject = {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: {
        name: where.name,
        namespace: SYSTEM_NAMESPACE,
        labels: { [MANAGED_BY_LABEL]: 'tidegate', ...where.labels },
        ...(cm?.metadata.resourceVersion ? { resourceVersion: cm.metadata.resourceVersion } : {}),
      },
      data: { [where.key]: next.text },
    };
    try {
      if (cm) await client.replace(obj, signal);
      else
        await client.create(obj, signal).catch(async (err: unknown) => {
          if (!(err instanceof KubeApiError && err.isNotFound)) throw err;
          await ensureSystemNamespace(client, signal);
          return client.create(obj, signal);
        });
      return next.value;
    } catch (err) {
      if (!(err instanceof KubeApiError && (err.isConflict || err.isNotFound))) throw err;
    }
  }
  throw where.exhausted();
}
