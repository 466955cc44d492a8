import { createHmac } from 'node:crypto';
import { clip } from '../model/index.js';
import { COLOUR, type NotifyEvent } from './events.js';

/** A request to a provider: its JSON body, and headers beyond the content type. */
export interface ProviderRequest {
  body: string;
  headers: Record<string, string>;
}

const escapeSlack = (t: string): string => t.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
/** Discord markdown: every character that could start markup (links, emphasis, quotes, headings) taken literally. */
const escapeDiscord = (t: string): string => t.replace(/([\\`*_~|>#[\]()-])/g, '\\$1');
/** Adaptive Card TextBlocks render a markdown subset: a `[text](url)` link is broken apart, the rest is harmless. */
const escapeTeams = (t: string): string => t.replace(/\]\(/g, '] (');

/**
 * A link an event may carry: an http(s) URL without credentials, nothing that could close Slack's
 * `<url|text>` or open markup (text from Git, such as a preview URL, never becomes a link elsewhere).
 */
export function safeLink(url: string | undefined): string | undefined {
  if (!url || /[\s<>|"'`]/.test(url)) return undefined;
  try {
    const u = new URL(url);
    return (u.protocol === 'https:' || u.protocol === 'http:') && !u.username && !u.password ? url : undefined;
  } catch {
    return undefined;
  }
}

/** Slack incoming webhook: Block Kit (header, section with fields, context), with `text` as the notification fallback. */
export function slackMessage(e: NotifyEvent) {
  const url = safeLink(e.url);
  const fields = e.fields
    .slice(0, 10)
    .map(([k, v]) => ({ type: 'mrkdwn' as const, text: clip(`*${escapeSlack(k)}*\n${escapeSlack(v)}`, 2000) }));
  return {
    text: clip(escapeSlack(e.title), 3000),
    blocks: [
      { type: 'header' as const, text: { type: 'plain_text' as const, text: clip(e.title, 150), emoji: false } },
      ...(e.text
        ? [{ type: 'section' as const, text: { type: 'mrkdwn' as const, text: clip(escapeSlack(e.text), 3000) } }]
        : []),
      ...(fields.length ? [{ type: 'section' as const, fields }] : []),
      {
        type: 'context' as const,
        elements: [
          {
            type: 'mrkdwn' as const,
            text: clip(`tidegate · ${e.kind} · ${escapeSlack(e.repo)}${url ? ` · <${url}|details>` : ''}`, 3000),
          },
        ],
      },
    ],
  };
}

/** Microsoft Teams workflow webhook ("When a Teams webhook request is received"): a message with one Adaptive Card 1.4. */
export function teamsMessage(e: NotifyEvent) {
  const url = safeLink(e.url);
  return {
    type: 'message' as const,
    attachments: [
      {
        contentType: 'application/vnd.microsoft.card.adaptive' as const,
        contentUrl: null,
        content: {
          $schema: 'http://adaptivecards.io/schemas/adaptive-card.json',
          type: 'AdaptiveCard' as const,
          version: '1.4' as const,
          body: [
            {
              type: 'TextBlock' as const,
              text: escapeTeams(e.title),
              weight: 'Bolder' as const,
              size: 'Medium' as const,
              wrap: true,
            },
            ...(e.text ? [{ type: 'TextBlock' as const, text: escapeTeams(e.text), wrap: true }] : []),
            {
              type: 'FactSet' as const,
              facts: e.fields.map(([title, value]) => ({ title: escapeTeams(title), value: escapeTeams(value) })),
            },
          ],
          ...(url ? { actions: [{ type: 'Action.OpenUrl' as const, title: 'Details', url }] } : {}),
        },
      },
    ],
  };
}

/** Discord webhook: one embed (title, description, fields, colour, timestamp) within Discord's limits. */
export function discordMessage(e: NotifyEvent) {
  const url = safeLink(e.url);
  return {
    username: 'tidegate',
    // Nobody is pinged: a name in a commit message is text.
    allowed_mentions: { parse: [] as [] },
    embeds: [
      {
        title: clip(e.title, 256),
        description: clip(escapeDiscord(e.text || e.kind), 4096),
        color: COLOUR[e.kind],
        timestamp: e.at,
        ...(url ? { url } : {}),
        fields: e.fields.slice(0, 25).map(([name, value]) => ({
          name: clip(name, 256),
          value: clip(escapeDiscord(value) || '—', 1024),
          inline: true,
        })),
      },
    ],
  };
}

/** The generic webhook's JSON body: the event as it is. */
export const genericMessage = (e: NotifyEvent) => ({
  event: e.kind,
  repo: e.repo,
  target: e.target,
  cluster: e.cluster,
  revision: e.sha,
  title: e.title,
  text: e.text,
  fields: Object.fromEntries(e.fields),
  url: safeLink(e.url),
  at: e.at,
});

/** The signature header of a generic webhook: HMAC-SHA256 of the exact body, hex, as GitHub signs its own. */
export const signBody = (secret: string, body: string): string =>
  `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;

export type ProviderType = 'slack' | 'teams' | 'discord' | 'generic';

/** The request a provider of this type receives for an event. */
export function requestFor(type: ProviderType, e: NotifyEvent, secret?: string): ProviderRequest {
  const message =
    type === 'slack'
      ? slackMessage(e)
      : type === 'teams'
        ? teamsMessage(e)
        : type === 'discord'
          ? discordMessage(e)
          : genericMessage(e);
  const body = JSON.stringify(message);
  return {
    body,
    headers:
      type === 'generic'
        ? { 'x-tidegate-event': e.kind, ...(secret ? { 'x-tidegate-signature-256': signBody(secret, body) } : {}) }
        : {},
  };
}
