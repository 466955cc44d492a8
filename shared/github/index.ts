export { GitHub, apiUrlFor, repoName, type PullRequestRef, type RepoName } from './client.js';
