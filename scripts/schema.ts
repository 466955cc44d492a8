// `npm run schema`: writes schema/tidegate.schema.json and schema/settings.schema.json (for editors:
// yaml-language-server, JSON's "$schema"; `tidegate settings check` checks the same schema).
import { writeFileSync } from 'node:fs';
import { configJsonSchema, settingsJsonSchema } from '../shared/config/index.js';

export const SCHEMA_PATH = new URL('../schema/tidegate.schema.json', import.meta.url);
export const SETTINGS_SCHEMA_PATH = new URL('../schema/settings.schema.json', import.meta.url);
const text = (id: string, title: string, schema: Record<string, unknown>): string =>
  `${JSON.stringify({ $id: `https://tidegate.dev/schema/${id}`, title, ...schema }, null, 2)}\n`;
export const schemaText = (): string => text('tidegate.schema.json', 'tidegate.yaml', configJsonSchema());
export const settingsSchemaText = (): string =>
  text('settings.schema.json', 'tidegate.settings.json (deploy-time settings)', settingsJsonSchema());

if (process.argv[1]?.endsWith('schema.ts')) {
  writeFileSync(SCHEMA_PATH, schemaText());
  writeFileSync(SETTINGS_SCHEMA_PATH, settingsSchemaText());
}
