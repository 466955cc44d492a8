export { waitForHealth, type HealthReport } from './wait.js';
export { assess, type Assessment } from './rules.js';
