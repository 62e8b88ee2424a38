// Server-side apply of the rendered objects: field manager `nodemesh`, conflicts refused
// unless --force-conflicts; CRDs first and waited for until Established, so the objects that
// use them (and the daemons that watch them) find them served.
import { KubeApi, httpStatusOf } from './api-client';
import { pathOf, resourceType, objectPath } from './resources';
import { InstallerErrors, NodemeshError } from '../errors';
import { FIELD_MANAGER } from '../manifests/values';
import { isCrd, objectRef, type KubeObject } from '../manifests/render';

export interface Output { line(text: string): void; progress(text: string): void; done(): void }

export const APPLY_CONTENT_TYPE = 'application/apply-patch+yaml';

export async function serverSideApply(api: KubeApi, obj: KubeObject, opts: { force: boolean; fieldManager?: string; crds?: KubeObject[] }): Promise<KubeObject> {
  try {
    const res = await api.request<KubeObject>('PATCH', pathOf(obj, opts.crds), {
      // JSON is YAML: the apply content type takes it as it is.
      body: obj, contentType: APPLY_CONTENT_TYPE,
      query: { fieldManager: opts.fieldManager ?? FIELD_MANAGER, force: opts.force ? true : undefined, fieldValidation: 'Strict' },
    });
    return res.body;
  } catch (e) {
    if (httpStatusOf(e) === 409 && NodemeshError.is(e)) {
      throw InstallerErrors.NODEMESH_E_KUBE_APPLY_CONFLICT({ object: objectRef(obj), message: e.message.replace(/^.*?409 Conflict: /, '') }, { cause: e });
    }
    throw e;
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export async function waitCrdsEstablished(api: KubeApi, crds: KubeObject[], deadline: number, timeoutSeconds: number, out: Output): Promise<void> {
  const pending = new Set(crds.map((c) => c.metadata.name));
  while (pending.size > 0) {
    for (const name of [...pending]) {
      const crd = crds.find((c) => c.metadata.name === name)!;
      const got = await api.request<{ status?: { conditions?: { type: string; status: string; reason?: string; message?: string }[] } }>('GET', pathOf(crd));
      const conds = got.body.status?.conditions ?? [];
      if (conds.some((c) => c.type === 'Established' && c.status === 'True')) {
        pending.delete(name);
        out.line(`customresourcedefinition/${name} established`);
        continue;
      }
      const bad = conds.find((c) => c.type === 'NamesAccepted' && c.status === 'False');
      if (bad) throw InstallerErrors.NODEMESH_E_KUBE_API({ request: `CRD ${name}`, code: 422, reason: bad.reason ?? 'NamesNotAccepted', message: bad.message ?? '' });
    }
    if (pending.size === 0) break;
    if (Date.now() > deadline) {
      throw InstallerErrors.NODEMESH_E_KUBE_TIMEOUT({ what: 'the CRDs to be Established', seconds: timeoutSeconds, state: `not yet: ${[...pending].join(', ')}` });
    }
    await sleep(500);
  }
}

/** Applies every object, CRDs first (then waits for them), in the order given. */
export async function applyAll(api: KubeApi, objects: KubeObject[], opts: { force: boolean; deadline: number; timeoutSeconds: number; out: Output }): Promise<void> {
  const crds = objects.filter(isCrd);
  for (const crd of crds) {
    await serverSideApply(api, crd, { force: opts.force });
    opts.out.line(`${objectRef(crd).toLowerCase()} applied`);
  }
  if (crds.length) await waitCrdsEstablished(api, crds, opts.deadline, opts.timeoutSeconds, opts.out);
  for (const obj of objects.filter((o) => !isCrd(o))) {
    await serverSideApply(api, obj, { force: opts.force, crds });
    opts.out.line(`${objectRef(obj).toLowerCase()} applied`);
  }
}

export async function getOrUndefined<T>(api: KubeApi, path: string): Promise<T | undefined> {
  const res = await api.request<T>('GET', path, { accept: [404] });
  return res.status === 404 ? undefined : res.body;
}

export async function deleteIfPresent(api: KubeApi, obj: Pick<KubeObject, 'apiVersion' | 'kind' | 'metadata'>, crds: KubeObject[] = []): Promise<boolean> {
  const res = await api.request('DELETE', objectPath(resourceType(obj, crds), obj.metadata.name, obj.metadata.namespace), {
    accept: [404], body: { apiVersion: 'v1', kind: 'DeleteOptions', propagationPolicy: 'Foreground' },
  });
  return res.status !== 404;
}
