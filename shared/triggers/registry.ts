import type { ImageMessage } from '../model/index.js';
import { bodyBytes, reply, type HttpRequest, type HttpResponse } from './http.js';
import { secretsEqual } from './secret.js';

const MANIFEST_TYPES = new Set([
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
]);

interface DistributionEnvelope {
  events?: Array<{
    action?: string;
    target?: { mediaType?: string; repository?: string; tag?: string; digest?: string; url?: string };
    request?: { host?: string };
  }>;
}
interface HarborEvent {
  type?: string;
  event_data?: {
    resources?: Array<{ tag?: string; digest?: string; resource_url?: string }>;
    repository?: { repo_full_name?: string };
  };
}
interface DockerHubEvent {
  push_data?: { tag?: string };
  repository?: { repo_name?: string };
}

const hostOf = (url: string | undefined): string | undefined => {
  if (!url) return undefined;
  try {
    return new URL(url.includes('://') ? url : `https://${url}`).host;
  } catch {
    return undefined;
  }
};

function fromDistribution(body: DistributionEnvelope): ImageMessage[] {
  return (body.events ?? [])
    .filter((e) => e.action === 'push' && MANIFEST_TYPES.has(e.target?.mediaType ?? '') && e.target?.repository)
    .map((e) => ({
      type: 'image',
      registry: e.request?.host ?? hostOf(e.target?.url) ?? '',
      repository: e.target?.repository ?? '',
      tag: e.target?.tag,
      digest: e.target?.digest,
      source: 'distribution',
    }));
}

function fromHarbor(body: HarborEvent): ImageMessage[] {
  const repository = body.event_data?.repository?.repo_full_name ?? '';
  return (body.event_data?.resources ?? []).map((r) => ({
    type: 'image',
    registry: hostOf(r.resource_url) ?? '',
    repository,
    tag: r.tag,
    digest: r.digest,
    source: 'harbor',
  }));
}

function fromDockerHub(body: DockerHubEvent): ImageMessage[] {
  return [
    {
      type: 'image',
      registry: 'docker.io',
      repository: body.repository?.repo_name ?? '',
      tag: body.push_data?.tag,
      source: 'dockerhub',
    },
  ];
}

/** Recognises distribution (and registries that speak its envelope), Harbor and Docker Hub notifications. */
export function parseRegistryNotification(body: unknown): ImageMessage[] | undefined {
  if (typeof body !== 'object' || body === null) return undefined;
  if ('events' in body && Array.isArray((body as DistributionEnvelope).events))
    return fromDistribution(body as DistributionEnvelope);
  if ((body as HarborEvent).type === 'PUSH_ARTIFACT' || (body as HarborEvent).type === 'pushImage')
    return fromHarbor(body as HarborEvent);
  if ('push_data' in body && 'repository' in body) return fromDockerHub(body as DockerHubEvent);
  return undefined;
}

/** The shared secret may come as `Authorization: Bearer <s>`, `Authorization: <s>` (Harbor) or `?token=<s>` (Docker Hub). */
function presentedSecret(req: HttpRequest): string {
  const auth = req.headers['authorization'];
  if (auth) return auth.startsWith('Bearer ') ? auth.slice(7) : auth;
  return new URL(req.path, 'http://localhost').searchParams.get('token') ?? '';
}

/**
 * Verifies a registry notification (shared secret, size, JSON) and turns it into image messages.
 * Only manifest pushes count; blob pushes and pulls are ignored.
 */
export function receiveRegistryNotification(
  req: HttpRequest,
  secret: string,
  maxBytes = 1024 * 1024,
): { response: HttpResponse; messages: ImageMessage[] } {
  const none = (status: number, message: string) => ({ response: reply(status, message), messages: [] });
  if (req.method !== 'POST') return none(405, 'only POST is accepted');
  if (bodyBytes(req.body) > maxBytes) return none(413, `body larger than ${maxBytes} bytes`);
  if (!secretsEqual(presentedSecret(req), secret)) return none(401, 'missing or wrong shared secret');
  let body: unknown;
  try {
    body = JSON.parse(req.body) as unknown;
  } catch {
    return none(400, 'body is not valid JSON');
  }
  const messages = parseRegistryNotification(body);
  if (!messages) return none(400, 'not a distribution, Harbor or Docker Hub notification');
  const valid = messages.filter((m) => m.registry && m.repository && (m.tag || m.digest));
  if (valid.length === 0) return none(202, 'ignored: no image manifest push in this notification');
  return {
    response: reply(202, `queued ${valid.length} image update${valid.length === 1 ? '' : 's'}`),
    messages: valid,
  };
}
