export { localSettings, type LocalSettings } from './local.js';
