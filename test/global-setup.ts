import type { TestProject } from 'vitest/node';
import { VERSIONS, startEnvironment, type EnvironmentInfo } from '../devenv/index.js';

declare module 'vitest' {
  export interface ProvidedContext {
    env: EnvironmentInfo;
  }
}

/** Starts every real server once for the whole run; each test file reads them with inject('env'). */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const started = Date.now();
  const env = await startEnvironment();
  const { kubeApiserver, etcd } = env.kube.versions;
  console.log(
    `test servers up in ${Date.now() - started} ms: kube-apiserver ${kubeApiserver} at ${env.kube.server}, etcd ${etcd}, ` +
      `git http-backend at ${env.git.url}, distribution registry v${VERSIONS.registry} at ${env.registry.url}, ` +
      `moto ${VERSIONS.moto} at ${env.aws.endpoint}; kubeconfig ${env.kube.kubeconfigPath}`,
  );
  const { stop, ...info } = env;
  project.provide('env', info);
  return stop;
}
