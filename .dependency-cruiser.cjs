/**
 * The dependency direction (docs/architecture.md), checked on every `npm run lint`:
 *   model ← config, telemetry, github ← triggers, source, render, cluster, health, gates
 *         ← apply, reload, images, report, notify, flux ← state ← sync, status ← usecases ← aws ← functions/
 *                                                                usecases ← cli/
 * A shared module is entered only through its index.ts; nothing imports functions/ or cli/; only
 * functions/ import aws (the Lambda shell); only shared/cluster/kubeconfig.ts imports
 * @kubernetes/client-node (never in a Lambda bundle); shared/ never imports devenv/ or tests.
 */
const layers = [
  ['model'],
  ['config', 'telemetry', 'github'],
  ['triggers', 'source', 'render', 'cluster', 'health', 'gates'],
  ['apply', 'reload', 'images', 'report', 'notify', 'flux'],
  ['state'],
  ['sync', 'status'],
  ['usecases'],
  ['aws'],
];
const rank = Object.fromEntries(layers.flatMap((mods, i) => mods.map((m) => [m, i])));
const all = layers.flat();

const forbidden = all
  .map((mod) => {
    const allowed = all.filter((other) => other === mod || rank[other] < rank[mod]);
    const denied = all.filter((other) => !allowed.includes(other));
    return {
      name: `layer-${mod}`,
      comment: `shared/${mod} may import only ${allowed.join(', ')} (docs/architecture.md)`,
      severity: 'error',
      from: { path: `^shared/${mod}/` },
      to: { path: `^shared/(${denied.join('|') || '$^'})/` },
    };
  })
  .filter((rule) => !rule.to.path.includes('($^)'));

forbidden.push(
  {
    name: 'enter-modules-through-index',
    comment: 'another shared module is imported through its index.ts only',
    severity: 'error',
    from: { path: '^shared/([^/]+)/' },
    to: { path: '^shared/([^/]+)/.+', pathNot: ['^shared/$1/', '^shared/[^/]+/index\\.ts$'] },
  },
  {
    name: 'shells-enter-through-index',
    comment:
      'shells use a module through index.ts; shared/cluster/kubeconfig.ts is the one second entry (kubeconfig support, kept out of Lambda bundles)',
    severity: 'error',
    from: { path: '^(functions|cli|devenv|bench)/' },
    to: { path: '^shared/[^/]+/.+', pathNot: ['^shared/[^/]+/index\\.ts$', '^shared/cluster/kubeconfig\\.ts$'] },
  },
  {
    name: 'nothing-imports-shells',
    comment: 'functions/ and cli/ are entry points; nothing imports them',
    severity: 'error',
    from: { pathNot: '^(functions|cli|test|bench)/' },
    to: { path: '^(functions|cli)/' },
  },
  {
    name: 'only-functions-use-the-aws-shell',
    comment:
      'shared/aws (runtime, SQS, batches, the handler wrapper) is the Lambda shell: the CLI, the dev server and tests use shared/usecases',
    severity: 'error',
    from: { path: '^(cli|devenv|bench)/' },
    to: { path: '^shared/aws/' },
  },
  {
    name: 'shells-stay-apart',
    comment: 'a Lambda handler never imports the CLI, and the CLI never imports a handler',
    severity: 'error',
    from: { path: '^functions/' },
    to: { path: '^cli/' },
  },
  {
    name: 'cli-not-functions',
    severity: 'error',
    from: { path: '^cli/' },
    to: { path: '^functions/' },
  },
  {
    name: 'engine-has-no-test-code',
    comment: 'shared/ and functions/ never import the local test servers or tests',
    severity: 'error',
    from: { path: '^(shared|functions)/' },
    to: { path: '^(devenv|test|bench)/' },
  },
  {
    name: 'only-cluster-imports-client-node',
    comment: 'shared/cluster is the only importer of @kubernetes/client-node',
    severity: 'error',
    from: { path: '^(shared|functions|cli)/', pathNot: '^shared/cluster/kubeconfig\\.ts$' },
    to: { path: 'node_modules/@kubernetes/client-node/' },
  },
  {
    name: 'no-circular',
    severity: 'error',
    from: {},
    to: { circular: true },
  },
);

module.exports = {
  forbidden,
  options: {
    doNotFollow: { path: 'node_modules' },
    includeOnly: '^(shared|functions|cli|devenv|bench|node_modules/@kubernetes)/',
    tsConfig: { fileName: 'tsconfig.json' },
    tsPreCompilationDeps: true,
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default'],
      extensions: ['.ts', '.js', '.mjs', '.json'],
    },
    exclude: { path: '\\.test\\.ts$' },
  },
};
