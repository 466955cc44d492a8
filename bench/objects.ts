import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import type { KubeObject } from '../shared/model/index.js';

/** n objects of a realistic mix: 70% ConfigMaps, 15% Services, 15% Deployments; files of 100 documents. */
export function objects(n: number, prefix = 'o'): KubeObject[] {
  return Array.from({ length: n }, (_, i): KubeObject => {
    const name = `${prefix}-${i}`;
    if (i % 20 < 14)
      return {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name, labels: { bench: 'true' } },
        data: { index: String(i), payload: 'x'.repeat(200) },
      };
    if (i % 20 < 17)
      return {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name },
        spec: { selector: { app: name }, ports: [{ port: 80, targetPort: 8080 }] },
      };
    return {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name },
      spec: {
        replicas: 1,
        selector: { matchLabels: { app: name } },
        template: {
          metadata: { labels: { app: name } },
          spec: { containers: [{ name: 'app', image: 'registry.example/app:1.0.0' }] },
        },
      },
    };
  });
}

/** Writes objects as YAML files (`perFile` per file) under dir/path, for tidegate (yaml render) and kubectl -f. */
export function writeManifests(dir: string, path: string, objs: readonly KubeObject[], perFile = 100): string {
  const target = join(dir, path);
  mkdirSync(target, { recursive: true });
  for (let i = 0; i < objs.length; i += perFile)
    writeFileSync(
      join(target, `part-${String(i / perFile).padStart(4, '0')}.yaml`),
      objs
        .slice(i, i + perFile)
        .map((o) => stringify(o))
        .join('---\n'),
    );
  return target;
}
