export { GitHub, githubClients, repoName, type PullRequestRef, type RepoName } from './client.js';
