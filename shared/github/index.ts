export {
  GitHub,
  apiUrlFor,
  githubClients,
  repoName,
  type CommitIdentity,
  type MergedPullRequest,
  type RefUpdate,
  type PullRequestRef,
  type RepoName,
} from './client.js';
export { appInstallationTokens, type GitHubAppCredentials } from './app.js';
