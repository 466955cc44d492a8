export { EndpointAuth, KubeApiError, KubeClient, groupVersionOf } from './client.js';
export { EksAuth } from './eks.js';
