// A small client for the Kubernetes REST API: client-node's KubeConfig supplies the server,
// TLS and credentials; requests are plain HTTPS so every status code, content type (server-side
// apply) and Status object is handled here, the way the API conventions describe them.
import * as http from 'node:http';
import * as https from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';
import { InstallerErrors, NodemeshError } from '../errors';

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

const DEFAULT_TIMEOUT_MS = 30_000;

export class KubeApi {
  readonly server: string;

  constructor(private readonly kc: KubeConfig) {
    this.server = kc.getCurrentCluster()?.server ?? '';
  }

  get user(): string {
    return this.kc.getCurrentUser()?.name ?? '(no user)';
  }

  async request<T = unknown>(method: string, apiPath: string, opts: RequestOptions = {}): Promise<ApiResponse<T>> {
    const url = new URL(apiPath, this.server.endsWith('/') ? this.server : `${this.server}/`);
    // The server may carry a path prefix (a proxy): keep it.
    url.pathname = `${new URL(this.server).pathname.replace(/\/$/, '')}${apiPath}`;
    for (const [k, v] of Object.entries(opts.query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    const reqOpts: https.RequestOptions = {
      method, protocol: url.protocol, hostname: url.hostname.replace(/^\[|\]$/g, ''), port: url.port || undefined,
      path: `${url.pathname}${url.search}`, headers: { Accept: 'application/json' },
    };
    await this.kc.applyToHTTPSOptions(reqOpts);
    const payload = opts.body === undefined ? undefined : Buffer.from(typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body));
    if (payload) {
      reqOpts.headers = { ...reqOpts.headers, 'Content-Type': opts.contentType ?? 'application/json', 'Content-Length': String(payload.length) };
    }
    const what = `${method} ${url.pathname}`;
    const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const mod = url.protocol === 'http:' ? http : https;
      const req = mod.request(reqOpts as http.RequestOptions, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      });
      req.setTimeout(opts.timeoutMs ?? DEFAULT_TIMEOUT_MS, () => req.destroy(new Error(`no answer within ${(opts.timeoutMs ?? DEFAULT_TIMEOUT_MS) / 1000}s`)));
      req.on('error', (e) => reject(InstallerErrors.NODEMESH_E_KUBE_UNREACHABLE({ server: this.server, reason: describeNetError(e) }, { cause: e })));
      req.end(payload);
    });
    let body: unknown = text;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      // Not JSON: e.g. the plain-text "404 page not found" for a resource nobody serves.
    }
    if ((status >= 200 && status < 300) || opts.accept?.includes(status)) return { status, body: body as T };
    throw this.errorFor(what, status, body);
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
