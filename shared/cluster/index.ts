export { kubeConfigForAlias, kubeConfigFromEndpoint, kubeConfigFromFile, type ClusterEndpoint } from './connect.js';
export { KubeApiError, KubeClient, groupVersionOf, type ResourceInfo } from './client.js';
