// `nodemesh enroll <ns>` / `unenroll <ns>`: the namespace label, by merge patch (only that one
// label changes; other labels and their owners are left alone).
import { KubeApi, httpStatusOf } from './api-client';
import { InstallerErrors } from '../errors';
import { ENROL_LABEL } from '../manifests/values';

export async function setEnrolment(api: KubeApi, namespace: string, enrol: boolean): Promise<'changed' | 'unchanged'> {
  const path = `/api/v1/namespaces/${encodeURIComponent(namespace)}`;
  let current: { metadata?: { labels?: Record<string, string> } };
  try {
    current = (await api.request<typeof current>('GET', path)).body;
  } catch (e) {
    if (httpStatusOf(e) === 404) throw InstallerErrors.NODEMESH_E_KUBE_NAMESPACE_NOT_FOUND({ namespace });
    throw e;
  }
  const now = current.metadata?.labels?.[ENROL_LABEL];
  if (enrol ? now === 'ambient' : now === undefined) return 'unchanged';
  await api.request('PATCH', path, {
    body: { metadata: { labels: { [ENROL_LABEL]: enrol ? 'ambient' : null } } },
    contentType: 'application/merge-patch+json', query: { fieldManager: 'nodemesh' },
  });
  return 'changed';
}
