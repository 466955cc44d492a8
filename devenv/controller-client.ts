import { KubeClient } from '../shared/cluster/index.js';
import type { KubeObject } from '../shared/model/index.js';

/**
 * A client that can also play a controller: it writes the status subresource (a JSON merge patch),
 * which the local apiserver needs from someone, having no controller-manager. Tests, benchmarks and
 * the demo use it; the engine never writes status.
 */
export class ControllerClient extends KubeClient {
  async patchStatus(obj: Pick<KubeObject, 'apiVersion' | 'kind' | 'metadata'>, status: unknown): Promise<KubeObject> {
    const info = await this.requireResource(obj.apiVersion, obj.kind);
    return this.request<KubeObject>(
      'PATCH',
      `${KubeClient.path(info, obj.metadata.namespace, obj.metadata.name)}/status`,
      { body: { status }, contentType: 'application/merge-patch+json' },
    );
  }
}
