/** Small server-side SVG charts: no script, nothing loaded from anywhere. */

export const escapeHtml = (text: string): string =>
  text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c);

export interface Bar {
  value: number;
  /** What the bar is (its tooltip): a revision, a time. */
  label: string;
  /** A CSS class for its colour (an outcome). */
  tone?: string;
  /** When it happened (ISO): the x axis shows the first and the last. */
  at?: string;
}

/** A round number at or above the largest value, for the axis. */
function niceMax(max: number): number {
  if (max <= 0) return 1;
  const step = 10 ** Math.floor(Math.log10(max));
  return [1, 2, 5, 10].map((m) => m * step).find((v) => v >= max) ?? max;
}

export interface ChartOptions {
  title: string;
  /** The unit of the values (ms, objects): named on the y axis. */
  unit: string;
  /** The y axis' title (default: the unit). */
  yLabel?: string;
  /** The x axis' title (default: "sync, oldest → newest"). */
  xLabel?: string;
  width?: number;
  height?: number;
  /** The values are counts: no tick between whole numbers. */
  integer?: boolean;
  /** A value as its tick and tooltip show it, with its unit (default: rounded, then the unit). */
  format?: (v: number) => string;
}

/** `HH:MM` UTC of a time, with the date when it is not the day of `other`. */
const shortTime = (iso: string, other: string): string =>
  iso.slice(0, 10) === other.slice(0, 10) ? iso.slice(11, 16) : `${iso.slice(5, 10)} ${iso.slice(11, 16)}`;

function xTicks(bars: readonly Bar[], pad: { left: number }, width: number, y: number): string {
  const first = bars[0]?.at;
  const last = bars.at(-1)?.at;
  if (!first || !last)
    return `<text class="tick" x="${pad.left}" y="${y}">oldest</text><text class="tick" x="${width - 4}" y="${y}" text-anchor="end">newest</text>`;
  return `<text class="tick x" x="${pad.left}" y="${y}">${escapeHtml(shortTime(first, last))}</text><text class="tick x" x="${width - 4}" y="${y}" text-anchor="end">${escapeHtml(shortTime(last, first))}</text>`;
}

/**
 * A bar chart, oldest bar first: one `rect.bar` per value with a `<title>`; a y axis with its
 * title (the unit) and ticks at 0, half and the top, each with its unit, and grid lines; an x axis
 * with its title and the first and last bar's time (UTC). An empty series draws the frame and says
 * "no data".
 */
export function barChart(bars: readonly Bar[], opts: ChartOptions): string {
  const width = opts.width ?? 340;
  const height = opts.height ?? 130;
  const pad = { left: 62, bottom: 30, top: 8 };
  const fmt = opts.format ?? ((v: number) => `${Math.round(v)} ${opts.unit}`);
  const top = niceMax(Math.max(0, ...bars.map((b) => b.value)));
  const plotW = width - pad.left - 4;
  const plotH = height - pad.bottom - pad.top;
  const base = pad.top + plotH;
  const slot = bars.length ? plotW / bars.length : plotW;
  const rects = bars.map((b, i) => {
    const h = Math.max(1, (b.value / top) * plotH);
    const x = pad.left + i * slot + slot * 0.1;
    return `<rect class="bar ${escapeHtml(b.tone ?? '')}" x="${x.toFixed(1)}" y="${(base - h).toFixed(1)}" width="${Math.max(1, slot * 0.8).toFixed(1)}" height="${h.toFixed(1)}"><title>${escapeHtml(`${b.label}: ${fmt(b.value)}`)}</title></rect>`;
  });
  // Counts get whole ticks only (0 and 5, not 2.5).
  const ticks = opts.integer && !Number.isInteger(top / 2) ? [0, top] : [0, top / 2, top];
  const yTicks = ticks.map((v) => {
    const y = base - (v / top) * plotH;
    return `<line class="grid" x1="${pad.left}" y1="${y.toFixed(1)}" x2="${width - 4}" y2="${y.toFixed(1)}"/><line class="axis" x1="${pad.left - 3}" y1="${y.toFixed(1)}" x2="${pad.left}" y2="${y.toFixed(1)}"/><text class="tick y" x="${pad.left - 5}" y="${(y + 3).toFixed(1)}" text-anchor="end">${escapeHtml(fmt(v))}</text>`;
  });
  const yLabel = opts.yLabel ?? opts.unit;
  const xLabel = opts.xLabel ?? 'sync, oldest → newest';
  return [
    `<figure class="chart"><svg role="img" aria-label="${escapeHtml(`${opts.title}: y ${yLabel}, x ${xLabel}`)}" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}">`,
    yTicks.join(''),
    `<line class="axis" x1="${pad.left}" y1="${base}" x2="${width - 4}" y2="${base}"/>`,
    `<line class="axis" x1="${pad.left}" y1="${pad.top}" x2="${pad.left}" y2="${base}"/>`,
    bars.length
      ? rects.join('')
      : `<text class="tick" x="${pad.left + plotW / 2}" y="${pad.top + plotH / 2}" text-anchor="middle">no data</text>`,
    xTicks(bars, pad, width, base + 12),
    `<text class="axis-label x" x="${pad.left + plotW / 2}" y="${height - 3}" text-anchor="middle">${escapeHtml(xLabel)}</text>`,
    `<text class="axis-label y" transform="translate(11 ${pad.top + plotH / 2}) rotate(-90)" text-anchor="middle">${escapeHtml(yLabel)}</text>`,
    `</svg><figcaption>${escapeHtml(opts.title)}</figcaption></figure>`,
  ].join('');
}

/** Milliseconds as people read them: 850 ms, 4.2 s, 3 min. */
export function formatMs(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${(ms / 60_000).toFixed(1)} min`;
}

/** One unit for a whole duration axis (ms, s or min, by its largest value), and its ticks in it. */
export function durationAxis(valuesMs: readonly number[]): { unit: string; format: (ms: number) => string } {
  const top = niceMax(Math.max(0, ...valuesMs));
  if (top >= 120_000) return { unit: 'min', format: (ms) => `${trim(ms / 60_000)} min` };
  if (top >= 2_000) return { unit: 's', format: (ms) => `${trim(ms / 1000)} s` };
  return { unit: 'ms', format: (ms) => `${Math.round(ms)} ms` };
}

const trim = (v: number): string => (Number.isInteger(v) ? String(v) : v.toFixed(1));
