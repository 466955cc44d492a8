export { routeGithubEvent, verifyGithub, type TrackedRepo } from './github.js';
export { reply, type HttpRequest, type HttpResponse } from './http.js';
export { parseEcrEvent, type EcrImageActionEvent } from './ecr.js';
export { receiveRegistryNotification } from './registry.js';
export { fromApiGateway, toApiGateway } from './apigateway.js';
