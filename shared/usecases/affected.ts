import type { TargetSpec } from '../config/index.js';
import { normaliseRepoUrl, type PushMessage } from '../model/index.js';
import { CONFIG_FILE } from './repo-config.js';

const under = (path: string, dir: string): boolean =>
  dir === '.' || dir === '' || path === dir || path.startsWith(`${dir.replace(/\/+$/, '')}/`);

/** Targets a push affects: those that follow this repository and branch, and whose path (or tidegate.yaml) changed. */
export function affectedTargets(
  targets: readonly TargetSpec[],
  msg: Pick<PushMessage, 'repo' | 'ref' | 'paths'>,
): TargetSpec[] {
  return targets.filter((t) => {
    const sameRepo = t.source.url === undefined || normaliseRepoUrl(t.source.url) === normaliseRepoUrl(msg.repo);
    const ref = t.source.ref ?? {};
    const tracksBranch = !ref.tag && !ref.semver && !ref.commit && `refs/heads/${ref.branch ?? 'main'}` === msg.ref;
    if (!sameRepo || !tracksBranch) return false;
    if (msg.paths === null || msg.paths.includes(CONFIG_FILE)) return true;
    const valuesFiles = (t.helm?.values ?? []).map((v) => `${t.path}/${v}`);
    return msg.paths.some((p) => under(p, t.path) || valuesFiles.includes(p));
  });
}
