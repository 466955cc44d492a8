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
   * already gives (W3005), dropped.
   */
  tidy() {
    const resources = this.serverless.service.provider.compiledCloudFormationTemplate.Resources;
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
    // A Fn::Sub left with no variable once parameters are filled in (an ARN given in full): a plain string (cfn-lint W1020).
    const plain = (value) => {
      if (Array.isArray(value)) return value.map(plain);
      if (!value || typeof value !== 'object') return value;
      if (typeof value['Fn::Sub'] === 'string' && !value['Fn::Sub'].includes('${')) return value['Fn::Sub'];
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
    };
    for (const resource of Object.values(resources)) resource.Properties &&= plain(resource.Properties);
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
        `${file} does not exist: write the deploy-time settings there (README: Deploying to AWS, step 3) or name the file with --param="settingsFile=<path>"`,
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
