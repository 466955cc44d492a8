import type { NotifyEventKind } from '../config/index.js';

export type { NotifyEventKind };

/** One event, as every provider formats it: names, counts and reasons, never an object's values. */
export interface NotifyEvent {
  kind: NotifyEventKind;
  /** The GitOps repository (credentials removed). */
  repo: string;
  target?: string | undefined;
  cluster?: string | undefined;
  /** The commit it is about (the key of "one message per event and revision"). */
  sha?: string | undefined;
  /** One line: what happened. */
  title: string;
  /** Details: the error's first line, what a hold waits for, which images. */
  text: string;
  /** Name/value pairs shown as fields. */
  fields: Array<[string, string]>;
  /** Where to look (a commit, a pull request). */
  url?: string | undefined;
  at: string;
}

/** Severity colours providers use. */
export const COLOUR: Record<NotifyEventKind, number> = {
  applied: 0x1a7f37,
  failed: 0xcf222e,
  held: 0xbf8700,
  'reload-held': 0xbf8700,
  'rolled-back': 0xbc4c00,
  'drift-corrected': 0x0969da,
  'image-committed': 0x8250df,
  'image-proposed': 0x8250df,
  'preview-published': 0x0969da,
  'dead-lettered': 0xcf222e,
  alarm: 0xcf222e,
};
