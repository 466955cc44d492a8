export { DEFAULT_MAX_BODY_BYTES, routeGithubEvent, verifyGithub, type GithubDelivery, type Routed, type TrackedRepo, type Verified } from './github.js';
export { bodyBytes, reply, type HttpRequest, type HttpResponse } from './http.js';
export { parseEcrEvent, type EcrImageActionEvent } from './ecr.js';
export { parseRegistryNotification, receiveRegistryNotification } from './registry.js';
export { secretsEqual } from './secret.js';
export { fromApiGateway, toApiGateway } from './apigateway.js';
