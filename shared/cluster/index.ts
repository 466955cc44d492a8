export { kubeConfigFromEndpoint, kubeConfigFromFile, type ClusterEndpoint } from './connect.js';
