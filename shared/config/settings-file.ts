import { readFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { isMap, isScalar, isSeq, type Document, type LineCounter } from 'yaml';
import { TidegateError, errorMessage } from '../model/index.js';
import { deploySettingsSchema, type DeploySettings } from './deploy.js';
import { ConfigError, formatPath, parseValidated, type ConfigProblem } from './load.js';

/** The deploy-time settings file: written by the operator, checked and packaged by `sls package`. */
export const SETTINGS_FILE = 'tidegate.settings.json';
/** Where the package holds the checked settings (serverless.yml: TIDEGATE_SETTINGS_FILE and each function's patterns). */
export const PACKAGED_SETTINGS = 'dist/settings/tidegate.settings.json';
/** Settings larger than this are not read (thirty repositories and ten clusters take about 12 KiB). */
const SETTINGS_LIMIT_BYTES = 1024 * 1024;

/** Each secret given inline (`{ "value": … }`): on Lambda a secret is read from Secrets Manager or SSM, never kept in the package. */
function inlineSecrets(file: string, doc: Document, counter: LineCounter): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const walk = (node: unknown, path: PropertyKey[]): void => {
    if (isSeq(node)) node.items.forEach((item, i) => walk(item, [...path, i]));
    if (!isMap(node)) return;
    const [only] = node.items;
    if (node.items.length === 1 && isScalar(only?.key) && only.key.value === 'value')
      problems.push({
        file,
        line: counter.linePos(node.range?.[0] ?? 0).line,
        field: formatPath(path),
        message:
          'a secret given inline: on Lambda a secret is read from Secrets Manager or SSM Parameter Store ({ "secretsManager": "<name>" } or { "ssm": "<name>" }), never kept in the package',
      });
    else for (const pair of node.items) if (isScalar(pair.key)) walk(pair.value, [...path, String(pair.key.value)]);
  };
  walk(doc.contents, []);
  return problems;
}

/**
 * Deploy-time settings checked against their schema (`schema/settings.schema.json`): the value, or a
 * ConfigError naming each problem's file, line and field. `lambda`: as the functions will read them
 * (no secret inline).
 */
export function checkSettings(text: string, file: string, opts: { lambda?: boolean } = {}): DeploySettings {
  if (text.length > SETTINGS_LIMIT_BYTES)
    throw new ConfigError([
      { file, line: 1, field: '', message: `${Math.round(text.length / 1024)} KiB, more than 1024 KiB` },
    ]);
  return parseValidated(text, file, deploySettingsSchema, (doc, counter) =>
    opts.lambda ? inlineSecrets(file, doc, counter) : [],
  ).data;
}

/**
 * The settings text and where it came from: TIDEGATE_SETTINGS (JSON, for local runs and tests), else
 * the file TIDEGATE_SETTINGS_FILE names (relative to the function's code, LAMBDA_TASK_ROOT, on
 * Lambda); undefined when neither is set.
 */
export function settingsSource(env: NodeJS.ProcessEnv): { text: string; file: string } | undefined {
  const inline = env['TIDEGATE_SETTINGS'];
  if (inline) return { text: inline, file: 'TIDEGATE_SETTINGS' };
  const named = env['TIDEGATE_SETTINGS_FILE'];
  if (!named) return undefined;
  const path = isAbsolute(named) ? named : join(env['LAMBDA_TASK_ROOT'] ?? process.cwd(), named);
  try {
    return { text: readFileSync(path, 'utf8'), file: named };
  } catch (err) {
    throw new TidegateError('SettingsMissing', `cannot read the deploy-time settings ${named}: ${errorMessage(err)}`);
  }
}

/**
 * The deploy-time settings the functions run with (settingsSource), with the stack's queue
 * (TIDEGATE_QUEUE_URL). On Lambda, a secret given inline is refused.
 */
export function deploySettings(env: NodeJS.ProcessEnv = process.env): DeploySettings {
  const source = settingsSource(env);
  if (!source)
    throw new TidegateError(
      'SettingsMissing',
      `no deploy-time settings: the package holds them as ${PACKAGED_SETTINGS} (TIDEGATE_SETTINGS_FILE), written by sls package from ${SETTINGS_FILE}`,
    );
  const settings = checkSettings(source.text, source.file, { lambda: env['AWS_LAMBDA_FUNCTION_NAME'] !== undefined });
  const queueUrl = env['TIDEGATE_QUEUE_URL'] ?? settings.queueUrl;
  return queueUrl ? { ...settings, queueUrl } : settings;
}
