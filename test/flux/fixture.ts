import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { afterAll } from 'vitest';
import { tempTree } from '../helpers/files.js';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { HelmRepo } from '../../devenv/index.js';

const ROOT = fileURLToPath(new URL('./fixture', import.meta.url));

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? filesUnder(join(dir, e.name)) : [join(dir, e.name)],
  );
}

/**
 * The fixture repository (the layout of fluxcd/flux2-kustomize-helm-example) with its placeholders
 * filled: __ID__ keeps names apart from other tests on the shared apiserver, __HELM_REPO__ is the
 * chart repository's URL. Charts are not part of the repository: they are published to the Helm repository.
 */
export function fluxRepository(id: string, helmRepo: string): Record<string, string> {
  return Object.fromEntries(
    filesUnder(ROOT)
      .map((f) => relative(ROOT, f))
      .filter((f) => !f.startsWith('charts/'))
      .map((f) => [f, fill(readFileSync(join(ROOT, f), 'utf8'), id, helmRepo)]),
  );
}

const fill = (text: string, id: string, helmRepo: string, version = ''): string =>
  text.replaceAll('__ID__', id).replaceAll('__HELM_REPO__', helmRepo).replaceAll('__VERSION__', version);

/** One of the fixture's charts, with its placeholders filled: its templates and values. */
export function fixtureChart(name: string, id: string): { templates: Record<string, string>; values: string } {
  const dir = join(ROOT, 'charts', name);
  const templates = Object.fromEntries(
    filesUnder(join(dir, 'templates')).map((f) => [
      relative(join(dir, 'templates'), f),
      fill(readFileSync(f, 'utf8'), id, ''),
    ]),
  );
  return { templates, values: readFileSync(join(dir, 'values.yaml'), 'utf8') };
}

/** Publishes a fixture chart at a version; the packaged archive's path. */
export function publishFixtureChart(repo: HelmRepo, name: string, version: string, id: string): Promise<string> {
  const chart = fixtureChart(name, id);
  return repo.publish(name, version, chart.templates, chart.values);
}

/** A repository of these files in a temporary directory, removed after the test file. */
export function fluxTree(files: Record<string, string>, prefix = 'flux-'): string {
  const dir = tempTree(files, prefix);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}
