export { routeGithubEvent, verifyGithub, type TrackedRepo } from './github.js';
export { PAGE_HEADERS, reply, type HttpRequest, type HttpResponse } from './http.js';
export { MAX_LINK_SECONDS, refuseStatusLink, signStatusLink } from './status-link.js';
export { parseEcrEvent, type EcrImageActionEvent } from './ecr.js';
export { receiveRegistryNotification } from './registry.js';
export { fromApiGateway, toApiGateway } from './apigateway.js';
