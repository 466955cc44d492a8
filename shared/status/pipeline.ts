import type { PipelineHeartbeat } from '../state/index.js';
import { escapeHtml as h } from './plots.js';
import { timeCell } from './time.js';

/** Messages of the sync queue now, and of its dead-letter queue. */
export interface QueueCounts {
  /** Waiting to be received. */
  waiting: number;
  /** Received and not yet done (being handled, or handed back with a delay). */
  inFlight?: number | undefined;
  /** In the dead-letter queue (failed on every delivery): redrive or delete them. */
  deadLettered: number;
}

/** What the "pipeline" panel shows: is tidegate alive, and what is it doing. */
export interface PipelineView {
  heartbeat: PipelineHeartbeat;
  queue?: QueueCounts | undefined;
  /** Why the queues could not be read. */
  queueError?: string | undefined;
  /** Where the heartbeat comes from, for the reader. */
  source: string;
}

const row = (key: string, label: string, value: string): string =>
  `<tr data-pipeline="${h(key)}"><th>${h(label)}</th><td>${value}</td></tr>`;

function queueCells(view: PipelineView): { depth: string; dead: string } {
  if (view.queue) {
    const q = view.queue;
    return {
      depth: `<span class="count">${q.waiting}</span> waiting${q.inFlight !== undefined ? `, ${q.inFlight} in flight` : ''}`,
      dead: `<span class="count${q.deadLettered > 0 ? ' bad' : ''}">${q.deadLettered}</span>${q.deadLettered > 0 ? ' — failed on every delivery: redrive or delete them' : ''}`,
    };
  }
  const why = `<span class="error">not read: ${h(view.queueError ?? 'no queue')}</span>`;
  return { depth: why, dead: why };
}

/** The "pipeline" panel: last poll, last webhook received, queue depth, dead-lettered messages, last error. */
export function pipelinePanel(view: PipelineView, now: Date): string {
  const { poll, webhook, error } = view.heartbeat;
  const { depth, dead } = queueCells(view);
  const rows = [
    row('poll', 'last poll', poll ? `${timeCell(poll.at, now)} — ${h(poll.outcome)}` : 'none recorded'),
    row(
      'webhook',
      'last webhook received',
      webhook
        ? `${timeCell(webhook.sentAt, now)} from <b>${h(webhook.source)}</b> (${h(webhook.type)}), handled ${timeCell(webhook.handledAt, now)}`
        : 'none recorded',
    ),
    row('queue', 'queue depth', depth),
    row('dead', 'dead-lettered', dead),
    row(
      'error',
      'last error',
      error
        ? `${timeCell(error.at, now)} (${h(error.type)} from ${h(error.source)})${errorText(error.message)}`
        : 'none recorded',
    ),
  ];
  return `<section class="pipeline" aria-label="pipeline"><h2>pipeline</h2><table class="pipeline">${rows.join('')}</table><p><small>${h(view.source)}</small></p></section>`;
}

/** An error message: its first line on one line (cut with an ellipsis), the whole text behind it. */
export function errorText(message: string): string {
  const first = message.split('\n')[0] ?? '';
  return `<details class="error"><summary title="${h(first)}">${h(first)}</summary><pre>${h(message)}</pre></details>`;
}
