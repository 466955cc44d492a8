export { checkoutRevision, listBranches, redactUrl, resolveRevision, SourceError, type Checkout, type GitSource } from './git.js';
