import type { ImageMessage } from '../model/index.js';

/** The EventBridge event ECR emits for image actions (documented by AWS as "ECR Image Action"). */
export interface EcrImageActionEvent {
  'detail-type': string;
  source: string;
  account: string;
  region: string;
  detail: {
    'action-type'?: string;
    result?: string;
    'repository-name'?: string;
    'image-digest'?: string;
    'image-tag'?: string;
  };
}

/** A successful PUSH becomes an image message; anything else is ignored with the reason. */
export function parseEcrEvent(event: EcrImageActionEvent): { message: ImageMessage } | { ignored: string } {
  if (event.source !== 'aws.ecr' || event['detail-type'] !== 'ECR Image Action')
    return { ignored: `not an ECR image action (${event.source} / ${event['detail-type']})` };
  const d = event.detail;
  if (d['action-type'] !== 'PUSH') return { ignored: `action ${d['action-type'] ?? 'unknown'} is not a push` };
  if (d.result !== 'SUCCESS') return { ignored: `push result ${d.result ?? 'unknown'}` };
  if (!d['repository-name']) return { ignored: 'event names no repository' };
  return {
    message: {
      type: 'image',
      registry: `${event.account}.dkr.ecr.${event.region}.amazonaws.com`,
      repository: d['repository-name'],
      tag: d['image-tag'],
      digest: d['image-digest'],
      source: 'ecr',
    },
  };
}
