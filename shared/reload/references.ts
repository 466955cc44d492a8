import type { SourceKind } from './annotations.js';

interface Container {
  name: string;
  env?: Array<{
    name: string;
    value?: string;
    valueFrom?: { configMapKeyRef?: { name?: string }; secretKeyRef?: { name?: string } };
  }>;
  envFrom?: Array<{ configMapRef?: { name?: string }; secretRef?: { name?: string } }>;
  volumeMounts?: Array<{ name: string }>;
}

export interface PodSpec {
  containers?: Container[];
  initContainers?: Container[];
  volumes?: Array<{
    name: string;
    configMap?: { name?: string };
    secret?: { secretName?: string };
    projected?: { sources?: Array<{ configMap?: { name?: string }; secret?: { name?: string } }> };
  }>;
}

/** Volumes that mount a ConfigMap or Secret (directly or as a projected source). */
function volumesOf(spec: PodSpec, kind: SourceKind, name: string): string[] {
  return (spec.volumes ?? [])
    .filter((v) => {
      if (kind === 'ConfigMap')
        return v.configMap?.name === name || (v.projected?.sources ?? []).some((s) => s.configMap?.name === name);
      return v.secret?.secretName === name || (v.projected?.sources ?? []).some((s) => s.secret?.name === name);
    })
    .map((v) => v.name);
}

function usesByEnv(c: Container, kind: SourceKind, name: string): boolean {
  const fromValue = (c.env ?? []).some(
    (e) => (kind === 'ConfigMap' ? e.valueFrom?.configMapKeyRef?.name : e.valueFrom?.secretKeyRef?.name) === name,
  );
  const fromAll = (c.envFrom ?? []).some(
    (e) => (kind === 'ConfigMap' ? e.configMapRef?.name : e.secretRef?.name) === name,
  );
  return fromValue || fromAll;
}

/**
 * The container that carries a reload for a source, as Reloader picks it: the first container
 * that mounts it, or uses it in env/envFrom; a use by an init container maps to the first
 * container; undefined when nothing references it.
 */
export function containerUsing(spec: PodSpec, kind: SourceKind, name: string): string | undefined {
  const containers = spec.containers ?? [];
  const inits = spec.initContainers ?? [];
  const volumes = volumesOf(spec, kind, name);
  const mounts = (c: Container): boolean => (c.volumeMounts ?? []).some((m) => volumes.includes(m.name));
  const direct = containers.find((c) => mounts(c)) ?? containers.find((c) => usesByEnv(c, kind, name));
  if (direct) return direct.name;
  if (inits.some((c) => mounts(c) || usesByEnv(c, kind, name))) return containers[0]?.name;
  return undefined;
}

type Named = { kind: SourceKind; name: string | undefined };

const fromVolumes = (spec: PodSpec): Named[] =>
  (spec.volumes ?? []).flatMap((v) => [
    { kind: 'ConfigMap' as const, name: v.configMap?.name },
    { kind: 'Secret' as const, name: v.secret?.secretName },
    ...(v.projected?.sources ?? []).flatMap((s) => [
      { kind: 'ConfigMap' as const, name: s.configMap?.name },
      { kind: 'Secret' as const, name: s.secret?.name },
    ]),
  ]);

const fromContainer = (c: Container): Named[] => [
  ...(c.env ?? []).flatMap((e) => [
    { kind: 'ConfigMap' as const, name: e.valueFrom?.configMapKeyRef?.name },
    { kind: 'Secret' as const, name: e.valueFrom?.secretKeyRef?.name },
  ]),
  ...(c.envFrom ?? []).flatMap((e) => [
    { kind: 'ConfigMap' as const, name: e.configMapRef?.name },
    { kind: 'Secret' as const, name: e.secretRef?.name },
  ]),
];

/** Every ConfigMap and Secret a pod spec references (volumes, projected sources, env, envFrom; init containers too). */
export function referencedSources(spec: PodSpec): Array<{ kind: SourceKind; name: string }> {
  const all = [
    ...fromVolumes(spec),
    ...[...(spec.containers ?? []), ...(spec.initContainers ?? [])].flatMap(fromContainer),
  ];
  const out = new Map<string, { kind: SourceKind; name: string }>();
  for (const { kind, name } of all) if (name) out.set(`${kind}/${name}`, { kind, name });
  return [...out.values()];
}

/** Reloader's env var name: STAKATER_ + the name upper-cased, runs of other characters as one "_", + _CONFIGMAP / _SECRET. */
export function envVarName(name: string, kind: SourceKind): string {
  let out = '';
  let lastValid = false;
  for (const ch of name.toUpperCase()) {
    if (/[A-Z0-9]/.test(ch)) {
      out += ch;
      lastValid = true;
    } else {
      if (lastValid) out += '_';
      lastValid = false;
    }
  }
  return `STAKATER_${out}_${kind === 'ConfigMap' ? 'CONFIGMAP' : 'SECRET'}`;
}
