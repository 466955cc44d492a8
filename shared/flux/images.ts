import { imagePolicySchema } from '../config/index.js';
import type { FluxObject } from './objects.js';
import type { FluxReader } from './reader.js';
import { rec, refOf, str } from './spec.js';

/** Image policies, when an ImageUpdateAutomation writes them back (without one, Flux writes nothing to Git). */
export function mapImages(r: FluxReader): void {
  const automation = r.objects.ofKind('ImageUpdateAutomation')[0];
  if (!automation) return;
  const git = rec(automation.spec['git']);
  const author = rec(rec(rec(git['commit'])['author']));
  if (str(author['name']) && str(author['email']))
    r.out.author = { name: str(author['name']) ?? '', email: str(author['email']) ?? '' };
  const pushBranch = str(rec(git['push'])['branch']);
  const checkoutBranch = str(rec(rec(git['checkout'])['ref'])['branch']);
  const writeBack = pushBranch && pushBranch !== checkoutBranch ? 'pullRequest' : 'commit';
  if (writeBack === 'pullRequest')
    r.note(
      automation,
      'spec.git.push.branch',
      'updates go to a pull request from branch tidegate/images/<policy> instead of a push to this branch',
    );
  for (const policy of r.objects.ofKind('ImagePolicy')) mapPolicy(r, policy, writeBack);
}

function mapPolicy(r: FluxReader, policy: FluxObject, writeBack: 'commit' | 'pullRequest'): void {
  // The same policy under two clusters' paths is one policy of the repository.
  if (r.out.images.some((p) => p.name === policy.name && p.namespace === policy.namespace)) return;
  const { namespace, name } = refOf(policy.spec['imageRepositoryRef'], policy, 'ImageRepository');
  const repo = r.objects.get(policy, 'ImageRepository', namespace, name);
  if (!repo) {
    r.problem(
      policy,
      'spec.imageRepositoryRef',
      `ImageRepository ${namespace}/${name} is not declared in the repository`,
    );
    return;
  }
  const parsed = imagePolicySchema.safeParse({
    name: policy.name,
    namespace: policy.namespace,
    repository: str(repo.spec['image']),
    insecure: repo.spec['insecure'] === true,
    policy: policy.spec['policy'],
    ...(policy.spec['filterTags'] ? { filterTags: policy.spec['filterTags'] } : {}),
    digest: str(policy.spec['digestReflectionPolicy']) === 'Always',
    writeBack,
  });
  if (!parsed.success) {
    for (const issue of parsed.error.issues) r.problem(policy, issue.path.join('.'), issue.message);
    return;
  }
  r.out.images.push(parsed.data);
  r.mapped(policy, `image policy ${policy.name}`);
}
