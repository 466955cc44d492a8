export { reportSync, statusOf } from './status.js';
