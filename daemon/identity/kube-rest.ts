// One HTTPS request to the Kubernetes API with a KubeConfig's server, TLS and credentials
// applied (client-node 1.x). Plain requests keep every status code and content type in the
// caller's hands; shared by nodemesh-identity (TokenReview, pods, its CA Secret) and the CLI.
import * as http from 'node:http';
import * as https from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';

export interface KubeRestRequest {
  method: string;
  /** The API path, e.g. /api/v1/pods; any path prefix of the server URL is kept. */
  path: string;
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  contentType?: string;
  timeoutMs?: number;
}

export interface KubeRestResponse { status: number; text: string; body: unknown }

export const DEFAULT_KUBE_TIMEOUT_MS = 30_000;

export async function kubeRequest(kc: KubeConfig, r: KubeRestRequest): Promise<KubeRestResponse> {
  const server = kc.getCurrentCluster()?.server ?? '';
  const base = new URL(server);
  const url = new URL(`${base.pathname.replace(/\/$/, '')}${r.path}`, base);
  for (const [k, v] of Object.entries(r.query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
  const opts: https.RequestOptions = {
    method: r.method, protocol: url.protocol, hostname: url.hostname.replace(/^\[|\]$/g, ''), port: url.port || undefined,
    path: `${url.pathname}${url.search}`, headers: { Accept: 'application/json' },
  };
  await kc.applyToHTTPSOptions(opts);
  const payload = r.body === undefined ? undefined : Buffer.from(typeof r.body === 'string' ? r.body : JSON.stringify(r.body));
  if (payload) opts.headers = { ...opts.headers, 'Content-Type': r.contentType ?? 'application/json', 'Content-Length': String(payload.length) };
  const timeout = r.timeoutMs ?? DEFAULT_KUBE_TIMEOUT_MS;
  const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
    const mod = url.protocol === 'http:' ? http : https;
    const req = mod.request(opts as http.RequestOptions, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.setTimeout(timeout, () => req.destroy(Object.assign(new Error(`no answer within ${timeout / 1000}s`), { code: 'ETIMEDOUT' })));
    req.on('error', reject);
    req.end(payload);
  });
  let body: unknown = text;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    // Not JSON: e.g. the plain-text "404 page not found" for a resource nobody serves.
  }
  return { status, text, body };
}

/** The message of a Status object, or the text of a non-JSON answer. */
export function statusMessage(res: KubeRestResponse): string {
  const b = res.body as { message?: string } | undefined;
  return (typeof b === 'object' && b?.message) || res.text.trim().slice(0, 200) || `HTTP ${res.status}`;
}
