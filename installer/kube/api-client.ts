// A small client for the Kubernetes REST API: client-node's KubeConfig supplies the server,
// TLS and credentials; requests are plain HTTPS so every status code, content type (server-side
// apply) and Status object is handled here, the way the API conventions describe them.
import * as http from 'node:http';
import type { KubeConfig } from '@kubernetes/client-node';
import { InstallerErrors, NodemeshError } from '../errors';
import { kubeRequest, type KubeRestResponse } from '../../daemon/identity/kube-rest';

export interface ApiStatus { kind?: string; status?: string; message?: string; reason?: string; code?: number; details?: { causes?: { field?: string; message?: string }[] } }

export interface RequestOptions {
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  contentType?: string;
  /** Status codes returned to the caller instead of raised (e.g. 404 for "is it there?"). */
  accept?: number[];
  timeoutMs?: number;
}

export interface ApiResponse<T = unknown> { status: number; body: T }

export class KubeApi {
  readonly server: string;

  constructor(private readonly kc: KubeConfig) {
    this.server = kc.getCurrentCluster()?.server ?? '';
  }

  get user(): string {
    return this.kc.getCurrentUser()?.name ?? '(no user)';
  }

  async request<T = unknown>(method: string, apiPath: string, opts: RequestOptions = {}): Promise<ApiResponse<T>> {
    let res: KubeRestResponse;
    try {
      res = await kubeRequest(this.kc, { method, path: apiPath, query: opts.query, body: opts.body, contentType: opts.contentType, timeoutMs: opts.timeoutMs });
    } catch (e) {
      throw InstallerErrors.NODEMESH_E_KUBE_UNREACHABLE({ server: this.server, reason: describeNetError(e) }, { cause: e });
    }
    if ((res.status >= 200 && res.status < 300) || opts.accept?.includes(res.status)) return { status: res.status, body: res.body as T };
    throw this.errorFor(`${method} ${apiPath}`, res.status, res.body);
  }

  private errorFor(what: string, code: number, body: unknown): NodemeshError {
    const st: ApiStatus = typeof body === 'object' && body !== null ? (body as ApiStatus) : { message: String(body ?? '').trim() };
    const details = { httpStatus: code, reason: st.reason, causes: st.details?.causes };
    if (code === 401) return InstallerErrors.NODEMESH_E_KUBE_UNAUTHORIZED({ server: this.server, user: this.user }, { details });
    if (code === 403) return InstallerErrors.NODEMESH_E_KUBE_FORBIDDEN({ message: st.message ?? 'forbidden' }, { details });
    const causes = st.details?.causes?.map((c) => `${c.field ?? ''}: ${c.message ?? ''}`).join('; ');
    return InstallerErrors.NODEMESH_E_KUBE_API({
      request: what, code, reason: st.reason ?? (http.STATUS_CODES[code] ?? 'Error'),
      message: `${st.message ?? ''}${causes && !(st.message ?? '').includes(causes) ? ` (${causes})` : ''}`,
    }, { details });
  }
}

export function describeNetError(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  switch (err.code) {
    case 'ECONNREFUSED': return 'connection refused (nothing listens there)';
    case 'ENOTFOUND': case 'EAI_AGAIN': return `the host name does not resolve (${err.message})`;
    case 'ETIMEDOUT': case 'EHOSTUNREACH': case 'ENETUNREACH': return `no route or no answer (${err.code})`;
    case 'ECONNRESET': return 'the connection was reset';
    case 'DEPTH_ZERO_SELF_SIGNED_CERT': case 'SELF_SIGNED_CERT_IN_CHAIN': case 'UNABLE_TO_VERIFY_LEAF_SIGNATURE': case 'ERR_TLS_CERT_ALTNAME_INVALID':
      return `its TLS certificate is not trusted by the kubeconfig's certificate-authority (${err.code})`;
    default: return err.message || String(e);
  }
}

export function httpStatusOf(e: unknown): number | undefined {
  return NodemeshError.is(e) ? (e.details?.httpStatus as number | undefined) : undefined;
}
