export { commitHostsOf, renderStatusPage, repositoryPage, type StatusView, type TargetView } from './page.js';
export { barChart, escapeHtml, formatMs } from './plots.js';
export {
  inventoryHealth,
  type InventoryHealthOptions,
  type InventoryHealthStatus,
  type InventoryObjectHealth,
} from './inventory.js';
export { type PipelineView, type QueueCounts } from './pipeline.js';
export { ago } from './time.js';
