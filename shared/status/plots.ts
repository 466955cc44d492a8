/** Small server-side SVG charts: no script, nothing loaded from anywhere. */

export const escapeHtml = (text: string): string =>
  text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c);

export interface Bar {
  value: number;
  /** What the bar is (its tooltip): a revision, a time. */
  label: string;
  /** A CSS class for its colour (an outcome). */
  tone?: string;
}

/** A round number at or above the largest value, for the axis. */
function niceMax(max: number): number {
  if (max <= 0) return 1;
  const step = 10 ** Math.floor(Math.log10(max));
  return [1, 2, 5, 10].map((m) => m * step).find((v) => v >= max) ?? max;
}

/**
 * A bar chart, oldest bar first: one `rect.bar` per value with a `<title>`, the axis maximum and a
 * caption. An empty series draws the frame and says "no data".
 */
export function barChart(
  bars: readonly Bar[],
  opts: { title: string; unit: string; width?: number; height?: number; format?: (v: number) => string },
): string {
  const width = opts.width ?? 320;
  const height = opts.height ?? 90;
  const pad = { left: 44, bottom: 16, top: 6 };
  const fmt = opts.format ?? ((v: number) => `${Math.round(v)} ${opts.unit}`);
  const top = niceMax(Math.max(0, ...bars.map((b) => b.value)));
  const plotW = width - pad.left - 4;
  const plotH = height - pad.bottom - pad.top;
  const slot = bars.length ? plotW / bars.length : plotW;
  const rects = bars.map((b, i) => {
    const h = Math.max(1, (b.value / top) * plotH);
    const x = pad.left + i * slot + slot * 0.1;
    return `<rect class="bar ${escapeHtml(b.tone ?? '')}" x="${x.toFixed(1)}" y="${(pad.top + plotH - h).toFixed(1)}" width="${Math.max(1, slot * 0.8).toFixed(1)}" height="${h.toFixed(1)}"><title>${escapeHtml(`${b.label}: ${fmt(b.value)}`)}</title></rect>`;
  });
  return [
    `<figure class="chart"><svg role="img" aria-label="${escapeHtml(opts.title)}" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}">`,
    `<line class="axis" x1="${pad.left}" y1="${pad.top + plotH}" x2="${width - 4}" y2="${pad.top + plotH}"/>`,
    `<line class="axis" x1="${pad.left}" y1="${pad.top}" x2="${pad.left}" y2="${pad.top + plotH}"/>`,
    `<text class="tick" x="${pad.left - 4}" y="${pad.top + 8}" text-anchor="end">${escapeHtml(fmt(top))}</text>`,
    `<text class="tick" x="${pad.left - 4}" y="${pad.top + plotH}" text-anchor="end">0</text>`,
    bars.length
      ? rects.join('')
      : `<text class="tick" x="${pad.left + plotW / 2}" y="${pad.top + plotH / 2}" text-anchor="middle">no data</text>`,
    `<text class="tick" x="${pad.left}" y="${height - 3}">oldest</text><text class="tick" x="${width - 4}" y="${height - 3}" text-anchor="end">newest</text>`,
    `</svg><figcaption>${escapeHtml(opts.title)}</figcaption></figure>`,
  ].join('');
}

/** Milliseconds as people read them: 850 ms, 4.2 s, 3 min. */
export function formatMs(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${(ms / 60_000).toFixed(1)} min`;
}
