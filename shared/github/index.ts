export {
  GitHub,
  apiUrlFor,
  githubClients,
  repoName,
  type MergedPullRequest,
  type PullRequestRef,
  type RepoName,
} from './client.js';
export { appInstallationTokens, type GitHubAppCredentials } from './app.js';
