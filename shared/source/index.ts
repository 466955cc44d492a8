export { checkoutRevision, commitInfo, listBranches, redactUrl, resolveRevision, SourceError, type Checkout, type GitSource } from './git.js';
export { commitAndPush, type CommitAuthor, type WriteBackResult } from './write.js';
