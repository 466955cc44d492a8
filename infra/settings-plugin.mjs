// The deploy-time settings, checked and put in the package; the framework's template tidied
// (serverless.yml: plugins).
//
// Before `sls package` (and `sls deploy`, which packages first) writes any artifact, the settings
// file (param settingsFile, default tidegate.settings.json) is checked by `tidegate settings check
// --lambda` against schema/settings.schema.json: a missing file, a problem (each with its line) or
// a secret given inline stops the package. The checked settings are written compact to
// dist/settings/tidegate.settings.json, which each function's package holds and TIDEGATE_SETTINGS_FILE
// names: no size ceiling (an environment variable has 4 KB for all of them), any file layout.
import { execFileSync } from 'node:child_process';
import process from 'node:process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';

const PACKAGED = 'dist/settings/tidegate.settings.json';

export default class TidegateSettings {
  constructor(serverless, _options, { log } = {}) {
    this.serverless = serverless;
    this.log = log;
    this.hooks = {
      'before:package:createDeploymentArtifacts': () => this.check(),
      // After the stack's own resources are merged in, before the template is written.
      'before:aws:package:finalize:saveServiceState': () => this.tidy(),
    };
  }

  /**
   * What cfn-lint warns of in the compiled template, and a validator that treats warnings as errors
   * refuses: the DependsOn entries the framework adds that a Ref or GetAtt of the same resource
   * already gives (W3005), dropped; conditions on parameters decided (foldConditions).
   */
  tidy() {
    const template = this.serverless.service.provider.compiledCloudFormationTemplate;
    foldConditions(template);
    const resources = template.Resources;
    const references = (value, found = new Set()) => {
      if (Array.isArray(value)) value.forEach((v) => references(v, found));
      else if (value && typeof value === 'object')
        for (const [key, v] of Object.entries(value)) {
          if (key === 'Ref' && typeof v === 'string') found.add(v);
          else if (key === 'Fn::GetAtt') found.add(Array.isArray(v) ? v[0] : String(v).split('.')[0]);
          else if (key === 'Fn::Sub') for (const m of JSON.stringify(v).matchAll(/\$\{([\w]+)[.}]/g)) found.add(m[1]);
          references(v, found);
        }
      return found;
    };
    // A Fn::Sub left with no variable once parameters are filled in (an ARN given in full): a plain
    // string (cfn-lint W1020); the framework's Fn::Join of strings, Refs and GetAtts: a Fn::Sub (I1022).
    const plain = (value) => {
      if (Array.isArray(value)) return value.map(plain);
      if (!value || typeof value !== 'object') return value;
      if (typeof value['Fn::Sub'] === 'string' && !value['Fn::Sub'].includes('${')) return value['Fn::Sub'];
      const sub = joinAsSub(value['Fn::Join']);
      if (sub !== undefined) return { 'Fn::Sub': sub };
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
    };
    for (const resource of Object.values(resources)) resource.Properties &&= plain(resource.Properties);
    for (const output of Object.values(template.Outputs ?? {})) output.Value &&= plain(output.Value);
    for (const resource of Object.values(resources)) {
      if (!resource.DependsOn) continue;
      const implied = references(resource.Properties ?? {});
      const kept = [resource.DependsOn].flat().filter((d) => !implied.has(d));
      if (kept.length > 0) resource.DependsOn = kept;
      else delete resource.DependsOn;
    }
  }

  check() {
    const dir = this.serverless.serviceDir;
    const fail = (message) => {
      throw new this.serverless.classes.Error(message);
    };
    const file = resolve(dir, this.serverless.service.custom?.tidegate?.settingsFile ?? 'tidegate.settings.json');
    if (!existsSync(file))
      fail(
        `${file} does not exist: write the deploy-time settings there (docs/deploy.md, step 3) or name the file with --param="settingsFile=<path>"`,
      );
    if (!existsSync(join(dir, 'dist/functions/sync-worker/index.mjs')))
      fail('the functions are not built: run `npm run build` first');
    try {
      const out = execFileSync(
        process.execPath,
        [join(dir, 'bin/tidegate.js'), 'settings', 'check', file, '--lambda', '--out', join(dir, PACKAGED)],
        { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
      );
      this.log?.notice?.(out.trim());
    } catch (err) {
      fail(`the deploy-time settings are not packaged:\n${String(err.stderr || err.message).trim()}`);
    }
  }
}

const NONE = Symbol('AWS::NoValue');

/**
 * Conditions that compare literals (the stack's parameters are filled in when it is packaged)
 * decided here: resources and Fn::If branches they switch off are left out, as CloudFormation would
 * leave them out, so the template holds only what is deployed (cfn-lint: W8003, and no checks of
 * values a switched-off branch holds).
 */
function foldConditions(template) {
  const decide = (c) => {
    if (Array.isArray(c?.['Fn::Equals'])) {
      const [a, b] = c['Fn::Equals'];
      return typeof a === 'string' && typeof b === 'string' ? a === b : undefined;
    }
    if (Array.isArray(c?.['Fn::Not'])) {
      const v = decide(c['Fn::Not'][0]);
      return v === undefined ? undefined : !v;
    }
    return undefined;
  };
  const decided = new Map();
  for (const [name, c] of Object.entries(template.Conditions ?? {})) {
    const v = decide(c);
    if (v !== undefined) decided.set(name, v);
  }
  if (decided.size === 0) return;
  const fold = (value) => {
    if (Array.isArray(value)) return value.map(fold).filter((v) => v !== NONE);
    if (!value || typeof value !== 'object') return value;
    const branch = value['Fn::If'];
    if (Array.isArray(branch) && decided.has(branch[0])) return fold(branch[decided.get(branch[0]) ? 1 : 2]);
    if (value.Ref === 'AWS::NoValue') return NONE;
    const out = {};
    for (const [k, v] of Object.entries(value)) {
      const folded = fold(v);
      if (folded !== NONE) out[k] = folded;
    }
    return out;
  };
  for (const section of ['Resources', 'Outputs'])
    for (const [name, item] of Object.entries(template[section] ?? {})) {
      if (item.Condition && decided.has(item.Condition)) {
        if (!decided.get(item.Condition)) {
          delete template[section][name];
          continue;
        }
        delete item.Condition;
      }
      template[section][name] = fold(item);
    }
  for (const name of decided.keys()) delete template.Conditions[name];
  if (Object.keys(template.Conditions).length === 0) delete template.Conditions;
}

/** A Fn::Join with an empty delimiter of strings, Refs and GetAtts, as a Fn::Sub string; undefined for any other. */
function joinAsSub(join) {
  if (!Array.isArray(join) || join[0] !== '' || !Array.isArray(join[1])) return undefined;
  let out = '';
  for (const part of join[1]) {
    if (typeof part === 'string' && !part.includes('${')) out += part;
    else if (typeof part?.Ref === 'string') out += `\${${part.Ref}}`;
    else if (Array.isArray(part?.['Fn::GetAtt'])) out += `\${${part['Fn::GetAtt'].join('.')}}`;
    else return undefined;
  }
  return out;
}
