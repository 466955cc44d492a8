export { renderStatusPage, repositoryPage, type StatusView, type TargetView } from './page.js';
export { barChart, escapeHtml, formatMs } from './plots.js';
export {
  inventoryHealth,
  type InventoryHealthOptions,
  type InventoryHealthStatus,
  type InventoryObjectHealth,
} from './inventory.js';
