export { assess, type Assessment } from './rules.js';
export { waitForHealth, type HealthReport, type WaitOptions } from './wait.js';
