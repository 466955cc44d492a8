// `npm run schema`: writes schema/tidegate.schema.json (for editors: yaml-language-server).
import { writeFileSync } from 'node:fs';
import { configJsonSchema } from '../shared/config/index.js';

export const SCHEMA_PATH = new URL('../schema/tidegate.schema.json', import.meta.url);
export const schemaText = (): string =>
  `${JSON.stringify({ $id: 'https://tidegate.dev/schema/tidegate.schema.json', title: 'tidegate.yaml', ...configJsonSchema() }, null, 2)}\n`;

if (process.argv[1]?.endsWith('schema.ts')) writeFileSync(SCHEMA_PATH, schemaText());
