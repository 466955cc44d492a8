export { GitHub, apiUrlFor, githubClients, repoName, type MergedPullRequest, type PullRequestRef, type RepoName, type Review } from './client.js';
