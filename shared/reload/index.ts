export { RELOADER, hasReloadAnnotations, shouldReload, type ReloadDecision, type ReloadSource, type SourceKind } from './annotations.js';
export { contentHash } from './hash.js';
export { containerUsing, envVarName, referencedSources, type PodSpec } from './references.js';
export { BASELINE_ANNOTATION, RELOADED_FROM_ANNOTATION, RELOADED_HASH_ANNOTATION, RELOAD_FIELD_MANAGER, reloadPass, type ReloadOptions, type ReloadReport, type ReloadScope, type ReloadStrategy } from './pass.js';
export { WORKLOADS, type WorkloadAdapter } from './workloads.js';
