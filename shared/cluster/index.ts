export { EndpointAuth, KubeApiError, KubeClient, groupVersionOf } from './client.js';
export { EksAuth } from './eks.js';
export { LOOKUP_CLUSTER_KINDS, LOOKUP_READS, serveLookups, type LookupEndpoint, type LookupScope } from './lookup.js';
