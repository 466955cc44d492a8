import { countChanges, formatRef, formatRevision, type SyncResult } from '../shared/model/index.js';

export interface Io {
  out: (text: string) => void;
  err: (text: string) => void;
}

export const processIo: Io = { out: (t) => void process.stdout.write(t), err: (t) => void process.stderr.write(t) };

const SYMBOL: Record<string, string> = { created: '+', configured: '~', deleted: '-', skipped: '!', unchanged: '=' };

/** Human output of sync/diff results: one line per change (unchanged ones hidden unless verbose), then a summary. */
export function formatResults(results: readonly SyncResult[], verbose = false): string {
  const lines: string[] = [];
  for (const r of results) {
    const counts = countChanges(r.changeSet);
    lines.push(`${r.target} @ ${formatRevision(r.revision)}: ${r.outcome} (${counts.created} created, ${counts.configured} configured, ${counts.deleted} deleted, ${counts.unchanged} unchanged, ${counts.skipped} skipped) in ${r.durationMs} ms`);
    for (const c of r.changeSet.changes) {
      if (c.action === 'unchanged' && !verbose) continue;
      const detail = [c.fields?.length ? c.fields.join(', ') : '', c.reason ?? ''].filter(Boolean).join('; ');
      lines.push(`  ${SYMBOL[c.action] ?? '?'} ${formatRef(c.ref)}${detail ? `  (${detail})` : ''}`);
    }
    for (const h of r.health.notReady) lines.push(`  health: ${formatRef(h.ref)} ${h.status}: ${h.message}`);
    if (r.error) lines.push(`  error: ${r.error}`);
  }
  return `${lines.join('\n')}\n`;
}
