import { escapeHtml as h } from './plots.js';

/** How long before `now` a time was, as people say it: "just now", "42 s ago", "3 min ago", "5 h ago", "2 d ago" ("in 5 min" ahead). */
export function ago(iso: string, now: Date): string {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return '';
  const ms = now.getTime() - t;
  const abs = Math.abs(ms);
  const text =
    abs < 5_000
      ? ''
      : abs < 60_000
        ? `${Math.round(abs / 1000)} s`
        : abs < 3_600_000
          ? `${Math.round(abs / 60_000)} min`
          : abs < 172_800_000
            ? `${Math.round(abs / 3_600_000)} h`
            : `${Math.round(abs / 86_400_000)} d`;
  if (!text) return 'just now';
  return ms >= 0 ? `${text} ago` : `in ${text}`;
}

/** A time as UTC (YYYY-MM-DD HH:MM:SS) with how long ago it was beside it, both computed when the page is rendered. */
export function timeCell(iso: string, now: Date): string {
  const rel = ago(iso, now);
  return `<time datetime="${h(iso)}">${h(iso.replace('T', ' ').slice(0, 19))}</time>${rel ? ` <small class="ago">${h(rel)}</small>` : ''}`;
}
