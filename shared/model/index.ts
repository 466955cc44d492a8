export { TidegateError } from './errors.js';
