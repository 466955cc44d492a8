export {
  cachedGitdir,
  checkoutRevision,
  commitInfo,
  exportTree,
  fetchTagObject,
  listBranches,
  resolveRevision,
  type GitSource,
} from './git.js';
export { RANGE_LIMIT, commitRange, rangeUpTo, type CommitRange, type RangeCommit } from './range.js';
export { commitAndPush, type CommitAuthor } from './write.js';
export { verifyRevision, type TrustedKey } from './verify.js';
export { fetchRemoteBase, remoteBases } from './remote-base.js';
export {
  chartRepositories,
  fetchChart,
  pickVersion,
  type ChartRef,
  type NamedChart,
  type ResolvedChart,
  type TrustedKeys,
} from './chart-repo.js';
export { CHART_LAYER, LOOPBACK, basicAuthorization, type RegistryCredentials } from './chart-oci.js';
export { artifactSources, fetchArtifact, type ArtifactRef, type ResolvedArtifact } from './artifact.js';
export { RepositoryFileError, readRepoFile } from './repo-file.js';
