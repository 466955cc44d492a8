export {
  GitHub,
  githubClients,
  repoName,
  type MergedPullRequest,
  type PullRequestRef,
  type RepoName,
} from './client.js';
