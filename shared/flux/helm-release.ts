import { posix } from 'node:path';
import type { HookAction } from '../config/index.js';
import type { FluxObject } from './objects.js';
import type { Declared, FluxReader } from './reader.js';
import { filesOf, ociChart } from './sources.js';
import { list, rec, refOf, repoPath, str } from './spec.js';

/** The chart template of a HelmRelease (its chart.spec, or the HelmChart its chartRef names) and the object holding it. */
function chartTemplate(
  r: FluxReader,
  obj: FluxObject,
  target: string,
  used: FluxObject[],
): { spec: Record<string, unknown>; owner: FluxObject } | { fields: Record<string, unknown> } | undefined {
  if (!str(rec(obj.spec['chartRef'])['kind'])) return { spec: rec(rec(obj.spec['chart'])['spec']), owner: obj };
  const { kind, namespace, name } = refOf(obj.spec['chartRef'], obj, '');
  if (kind === 'HelmChart' || kind === 'OCIRepository') {
    const source = r.objects.get(obj, kind, namespace, name);
    if (!source) {
      r.problem(obj, 'spec.chartRef', `${kind} ${namespace}/${name} is not declared in the repository`);
      return undefined;
    }
    used.push(source);
    if (kind === 'HelmChart') return { spec: source.spec, owner: source };
    const fields = ociChart(r, source, target);
    return fields && { fields };
  }
  if (kind === 'ExternalArtifact') {
    const files = filesOf(r, obj, 'spec.chartRef', obj.spec['chartRef']);
    if (!files) return undefined;
    if (files.git) {
      r.problem(obj, 'spec.chartRef', 'a chart from another Git repository is not supported yet');
      return undefined;
    }
    used.push(...files.via);
    // The chart is the artifact's directory: in place, copied by the generator's rules, or in an OCI artifact.
    return {
      fields: {
        path: files.root,
        render: 'helm',
        ...(files.assemble ? { assemble: files.assemble } : {}),
        ...(files.oci ? { artifact: files.oci } : {}),
      },
    };
  }
  r.problem(obj, 'spec.chartRef', `a chart from a ${kind} is not supported yet`);
  return undefined;
}

/** The chart of a HelmRelease: from a HelmRepository (HTTP or OCI), an OCIRepository, or a directory of this repository. */
function chartOf(
  r: FluxReader,
  obj: FluxObject,
  target: string,
  used: FluxObject[],
): Record<string, unknown> | undefined {
  const template = chartTemplate(r, obj, target, used);
  if (!template) return undefined;
  if ('fields' in template) return template.fields;
  const { spec, owner } = template;
  used.push(owner);
  const { kind, namespace, name } = refOf(spec['sourceRef'], owner, '');
  if (kind === 'HelmRepository') {
    const repo = r.objects.get(owner, 'HelmRepository', namespace, name);
    if (!repo) {
      r.problem(
        obj,
        'spec.chart.spec.sourceRef',
        `HelmRepository ${namespace}/${name} is not declared in the repository`,
      );
      return undefined;
    }
    used.push(repo);
    r.mapped(repo, `chart repository of target ${target}`);
    const url = (str(repo.spec['url']) ?? '').replace(/\/+$/, '');
    return {
      chart: {
        repository: url,
        name: str(spec['chart']),
        version: str(spec['version']) ?? '*',
        insecure: repo.spec['insecure'] === true,
      },
    };
  }
  if (kind === 'GitRepository') {
    const files = filesOf(r, owner, 'spec.chart.spec.sourceRef', spec['sourceRef']);
    if (files && !files.git) return { path: repoPath(posix.join(files.root, repoPath(spec['chart']))), render: 'helm' };
    if (files) r.problem(obj, 'spec.chart.spec.sourceRef', 'a chart from another Git repository is not supported yet');
    return undefined;
  }
  r.problem(obj, 'spec.chart.spec.sourceRef', `a chart from a ${kind} is not supported yet`);
  return undefined;
}

/** The actions whose hooks a HelmRelease disables (install, upgrade, rollback, uninstall: disableHooks). */
function disabledHooks(spec: Record<string, unknown>): HookAction[] {
  const actions: Array<[string, HookAction]> = [
    ['install', 'install'],
    ['upgrade', 'upgrade'],
    ['rollback', 'rollback'],
    ['uninstall', 'delete'],
  ];
  return actions.filter(([field]) => rec(spec[field])['disableHooks'] === true).map(([, action]) => action);
}

/** A HelmRelease's target: its chart rendered with its values and post-renderers. */
export function helmReleaseTarget(r: FluxReader, d: Declared): void {
  const { obj, entry } = d;
  const spec = obj.spec;
  const name = r.nameOf(obj, entry);
  const used: FluxObject[] = [];
  const chart = chartOf(r, obj, name, used);
  if (!chart) return;
  const targetNamespace = str(spec['targetNamespace']);
  const install = rec(spec['install']);
  const drift = rec(spec['driftDetection']);
  const mode = str(drift['mode']);
  const postRenderers = list(spec['postRenderers']).map((p) => rec(p['kustomize']));
  r.addTarget(
    {
      name,
      cluster: entry.cluster,
      // A chart from a repository or registry has no files (values come from the HelmRelease): the declaring
      // file's directory, so that a push elsewhere does not make it a target to sync.
      path: obj.file === '(generated)' ? '.' : posix.dirname(obj.file),
      ...chart,
      namespace: targetNamespace ?? obj.namespace,
      createNamespace: install['createNamespace'] === true,
      serviceAccountName: str(spec['serviceAccountName']),
      helm: {
        releaseName: str(spec['releaseName']) ?? (targetNamespace ? `${targetNamespace}-${obj.name}` : obj.name),
        valuesInline: rec(spec['values']),
        valuesFrom: list(spec['valuesFrom']).map((v) => ({ ...v, namespace: obj.namespace })),
        crds: str(install['crds']) === 'Skip' ? 'skip' : 'apply',
        disableHooks: disabledHooks(spec),
      },
      ...(postRenderers.length
        ? {
            kustomize: {
              patches: postRenderers.flatMap((k) => list(k['patches'])),
              images: postRenderers.flatMap((k) => list(k['images'])),
            },
          }
        : {}),
      timeout: str(spec['timeout']) ?? '5m',
      wait: install['disableWait'] !== true,
      dependsOn: r.dependsOn(obj, d.parent),
      suspend: spec['suspend'] === true,
      drift: mode === 'enabled' ? 'correct' : 'warn',
      ignore: list(drift['ignore']).map((rule) => {
        const { group, kind, name, namespace } = rec(rule['target']);
        return { paths: rule['paths'], ...(rule['target'] ? { target: { group, kind, name, namespace } } : {}) };
      }),
    },
    // A change of its chart source (a HelmRepository's URL, a HelmChart, an OCIRepository's ref) changes the target too.
    {
      kind: 'HelmRelease',
      namespace: obj.namespace,
      name: obj.name,
      file: obj.file,
      inputs: [...new Set([...d.inputs, ...used.flatMap((o) => o.inputs)])],
      ...(d.declaredBy ? { declaredBy: d.declaredBy } : {}),
    },
    obj,
  );
}
