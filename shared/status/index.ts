export { renderStatusPage, repositoryPage, type StatusView, type TargetView } from './page.js';
export { barChart, escapeHtml, formatMs } from './plots.js';
