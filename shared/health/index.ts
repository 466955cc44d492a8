export { waitForHealth, type HealthReport } from './wait.js';
