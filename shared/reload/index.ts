export { reloadPass, type ReloadReport, type ReloadScope, type ReloadStrategy } from './pass.js';
export { embedReloads } from './embed.js';
