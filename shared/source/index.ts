export { cachedGitdir, checkoutRevision, commitInfo, fetchTagObject, listBranches, resolveRevision, SourceError, type Checkout, type GitSource } from './git.js';
export { commitAndPush, type CommitAuthor, type WriteBackResult } from './write.js';
export { verifyRevision, type TrustedKey } from './verify.js';
