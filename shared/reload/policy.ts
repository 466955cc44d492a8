import { createHash } from 'node:crypto';
import type { ChangeWindow, ReloadPolicySetting } from '../config/index.js';
import { windowHold } from '../gates/index.js';

/** A reload policy as it applies: the stricter of each source (a target's tidegate.yaml, the deploy-time floor). */
export interface ReloadPolicy {
  notify?: string | undefined;
  approve?: string | undefined;
  /** Deny windows of every source; per source that sets allow windows, the reload must fall inside one. */
  deny: Array<ChangeWindow & { from: string }>;
  allow: Array<{ from: string; windows: ChangeWindow[] }>;
}

/** The stricter of the sources: notify and approve once any source sets them; every source's windows. */
export function reloadPolicy(
  sources: ReadonlyArray<{ from: string; setting: Partial<ReloadPolicySetting> | undefined }>,
): ReloadPolicy {
  const out: ReloadPolicy = { deny: [], allow: [] };
  for (const { from, setting } of sources) {
    if (!setting) continue;
    if (setting.mode === 'notify') out.notify ??= from;
    if (setting.approve) out.approve ??= from;
    const windows = setting.windows ?? [];
    out.deny.push(...windows.filter((w) => w.deny).map((w) => ({ ...w, from })));
    const allow = windows.filter((w) => w.allow);
    if (allow.length) out.allow.push({ from, windows: allow });
  }
  return out;
}

/** The stricter of two policies: notify and approve once either sets them; both one's windows. */
export function stricter(a: ReloadPolicy, b: ReloadPolicy): ReloadPolicy {
  const same = (x: unknown, y: unknown): boolean => JSON.stringify(x) === JSON.stringify(y);
  return {
    ...(a.notify || b.notify ? { notify: a.notify ?? b.notify } : {}),
    ...(a.approve || b.approve ? { approve: a.approve ?? b.approve } : {}),
    deny: [...a.deny, ...b.deny.filter((w) => !a.deny.some((x) => same(x, w)))],
    allow: [...a.allow, ...b.allow.filter((w) => !a.allow.some((x) => same(x, w)))],
  };
}

/** A policy that holds nothing (every reload rolls). */
export const ROLL_SETTING: ReloadPolicySetting = { windows: [], mode: 'roll', approve: false };

/** The stricter of two policy settings (as tidegate.yaml writes them): notify and approve once either sets them; both one's windows. */
export function stricterSetting(a: ReloadPolicySetting, b: ReloadPolicySetting): ReloadPolicySetting {
  const same = (x: unknown, y: unknown): boolean => JSON.stringify(x) === JSON.stringify(y);
  return {
    windows: [...a.windows, ...b.windows.filter((w) => !a.windows.some((x) => same(x, w)))],
    mode: a.mode === 'notify' || b.mode === 'notify' ? 'notify' : 'roll',
    approve: a.approve || b.approve,
  };
}

export type HoldKind = 'notify' | 'window' | 'approval';

/** Why a reload does not roll now, if so: notify-only, then a missing approval, then a closed window (an approved reload still waits for it). */
export function policyHold(
  policy: ReloadPolicy,
  now: Date,
  approved: boolean,
): { kind: HoldKind; reason: string } | undefined {
  if (policy.notify) return { kind: 'notify', reason: `reload.mode is notify (${policy.notify}): not rolled` };
  if (policy.approve && !approved)
    return { kind: 'approval', reason: `reload.approve (${policy.approve}): waits for an approval of this reload` };
  const closed = windowHold(policy, now);
  if (closed) return { kind: 'window', reason: `reload held: ${closed}` };
  return undefined;
}

/**
 * What an approval of a held reload names: the workload and the hashes its changed sources have
 * now. A later change of those sources is another reload, which the approval does not cover.
 */
export function reloadDigest(workload: string, changed: Readonly<Record<string, string>>): string {
  const sources = Object.keys(changed)
    .sort()
    .map((k) => `${k}=${changed[k]}`);
  return createHash('sha256')
    .update([workload, ...sources].join('\n'))
    .digest('hex')
    .slice(0, 16);
}
