export { GitHub, apiUrlFor, repoName, type MergedPullRequest, type PullRequestRef, type RepoName, type Review } from './client.js';
