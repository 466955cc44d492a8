export { kubeConfigForAlias, kubeConfigFromEndpoint, kubeConfigFromFile, type ClusterEndpoint } from './connect.js';
export { KubeApiError, KubeClient, groupVersionOf, type ResourceInfo } from './client.js';
export { EksAuth, TOKEN_EXPIRY_SECONDS, eksToken, type EksClusterRef, type EksConnectOptions } from './eks.js';
