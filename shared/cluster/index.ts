export { EndpointAuth, KubeApiError, KubeClient, KubeUnreachableError, groupVersionOf, type ClusterAuth, type ResourceInfo } from './client.js';
export { DEFAULT_RETRY, backoffMs, decide, parseRetryAfter, type RetryPolicy } from './retry.js';
export { EksAuth, TOKEN_EXPIRY_SECONDS, eksToken, type EksClusterRef, type EksConnectOptions } from './eks.js';
