export { EndpointAuth, KubeApiError, KubeClient, groupVersionOf, type ClusterAuth, type ResourceInfo } from './client.js';
export { EksAuth, TOKEN_EXPIRY_SECONDS, eksToken, type EksClusterRef, type EksConnectOptions } from './eks.js';
