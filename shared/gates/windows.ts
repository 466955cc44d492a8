import { Cron } from 'croner';
import { parseDuration, type ChangeWindow } from '../config/index.js';
import type { EffectiveGate } from './policy.js';

/** The window's current opening (start, end) when `now` falls inside it. */
function openAt(window: ChangeWindow, now: Date): { start: Date; end: Date } | undefined {
  const schedule = new Cron(window.allow ?? window.deny ?? '', { timezone: window.timeZone });
  const start = schedule.previousRuns(1, now)[0];
  const end = start ? new Date(start.getTime() + (parseDuration(window.duration) ?? 0)) : undefined;
  return start && end && now < end ? { start, end } : undefined;
}

const describe = (w: ChangeWindow): string => `"${w.allow ?? w.deny ?? ''}" for ${w.duration} (${w.timeZone})`;

/** Deny wins: inside any deny window holds; then each source's allow windows must include now. */
export function windowHold(gate: Pick<EffectiveGate, 'deny' | 'allow'>, now: Date): string | undefined {
  for (const w of gate.deny) {
    const open = openAt(w, now);
    if (open) return `inside deny window ${describe(w)} of ${w.from} until ${open.end.toISOString()}`;
  }
  for (const { from, windows } of gate.allow) {
    if (windows.some((w) => openAt(w, now))) continue;
    const next = windows
      .map((w) => new Cron(w.allow ?? '', { timezone: w.timeZone }).nextRun(now))
      .filter((d): d is Date => d !== null)
      .sort((a, b) => a.getTime() - b.getTime())[0];
    return `outside the allow windows of ${from}${next ? `; the next opens ${next.toISOString()}` : ''}`;
  }
  return undefined;
}
