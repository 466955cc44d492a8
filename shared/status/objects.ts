import { escapeHtml as h } from './plots.js';
import type { InventoryObjectHealth, InventoryHealthStatus } from './inventory.js';

const ORDER: InventoryHealthStatus[] = ['Degraded', 'Missing', 'Progressing', 'Unknown', 'Healthy'];

/** A target's objects with their health now, the unhealthy first; a count per status above. */
export function objectsTable(objects: readonly InventoryObjectHealth[] | undefined, error: string | undefined): string {
  if (error) return `<p class="error">objects not read: ${h(error)}</p>`;
  if (!objects) return '';
  if (!objects.length) return '<p><small>no objects in the inventory</small></p>';
  const counts = ORDER.map((s) => [s, objects.filter((o) => o.status === s).length] as const).filter(([, n]) => n);
  const sorted = [...objects].sort((a, b) => ORDER.indexOf(a.status) - ORDER.indexOf(b.status));
  const rows = sorted.map(
    (o) =>
      `<tr class="object" data-kind="${h(o.ref.kind)}" data-namespace="${h(o.ref.namespace)}" data-name="${h(o.ref.name)}" data-health="${h(o.status)}"><td>${h(o.ref.group ? `${o.ref.kind}.${o.ref.group}` : o.ref.kind)}</td><td>${h(o.ref.namespace || '—')}</td><td>${h(o.ref.name)}</td><td><span class="pill health ${h(o.status)}">${h(o.status)}</span></td><td class="msg">${h(o.message)}</td></tr>`,
  );
  return `<details class="objects"${counts.some(([s]) => s !== 'Healthy') ? ' open' : ''}><summary>objects now: ${counts.map(([s, n]) => `${n} ${h(s)}`).join(', ')}</summary><table class="objects"><thead><tr><th>kind</th><th>namespace</th><th>name</th><th>health</th><th>message</th></tr></thead><tbody>${rows.join('')}</tbody></table></details>`;
}
