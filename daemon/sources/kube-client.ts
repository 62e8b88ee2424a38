// The Kubernetes client configuration and the few plain GETs the source makes itself (paginated
// lists, discovery). Configuration comes from a kubeconfig file (NODEMESH_KUBECONFIG) or, in a
// pod, from the service account (token + CA, KUBERNETES_SERVICE_HOST/PORT), through
// @kubernetes/client-node's KubeConfig, which also re-reads a rotated projected token.
// Lists go through here rather than the typed API clients because those turn objects into
// class instances (dates, renamed fields); the schema validator wants the wire JSON.
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import { KubeConfig } from '@kubernetes/client-node';
import { KubeSourceErrors } from '../errors';
import { boundedError } from './source';

export type KubeConnection = { kind: 'in-cluster' } | { kind: 'kubeconfig'; path: string; context?: string };

const SA_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export function loadKubeConfig(conn: KubeConnection): KubeConfig {
  const kc = new KubeConfig();
  if (conn.kind === 'kubeconfig') {
    try {
      kc.loadFromFile(conn.path);
    } catch (cause) {
      throw KubeSourceErrors.NODEMESH_E_KUBE_CONFIG({ from: conn.path, reason: boundedError((cause as Error).message) }, { cause });
    }
    if (conn.context) {
      if (!kc.getContexts().some((c) => c.name === conn.context)) {
        throw KubeSourceErrors.NODEMESH_E_KUBE_CONFIG({ from: conn.path, reason: `no context named ${JSON.stringify(conn.context)}` });
      }
      kc.setCurrentContext(conn.context);
    }
  } else {
    if (!process.env.KUBERNETES_SERVICE_HOST) {
      throw KubeSourceErrors.NODEMESH_E_KUBE_CONFIG({ from: 'the pod environment', reason: 'KUBERNETES_SERVICE_HOST is not set (not running in a pod?)' });
    }
    if (!fs.existsSync(`${SA_DIR}/token`)) {
      throw KubeSourceErrors.NODEMESH_E_KUBE_CONFIG({ from: SA_DIR, reason: 'no service account token is mounted' });
    }
    kc.loadFromCluster();
  }
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw KubeSourceErrors.NODEMESH_E_KUBE_CONFIG({ from: conn.kind === 'kubeconfig' ? conn.path : SA_DIR, reason: 'no current cluster' });
  try {
    new URL(cluster.server);
  } catch {
    throw KubeSourceErrors.NODEMESH_E_KUBE_CONFIG({ from: conn.kind === 'kubeconfig' ? conn.path : SA_DIR, reason: `the cluster server ${JSON.stringify(cluster.server)} is not a URL` });
  }
  return kc;
}

/** An API error: HTTP status and, when the body was a Status object, its reason and message. */
export class ApiRequestError extends Error {
  constructor(readonly statusCode: number, readonly reason: string, message: string) {
    super(message);
  }
}

export interface ListPage {
  resourceVersion: string;
  continue: string | undefined;
  items: unknown[];
}

const REQUEST_TIMEOUT_MS = 60_000;

export class KubeHttp {
  constructor(readonly kc: KubeConfig) {}

  get server(): string {
    return this.kc.getCurrentCluster()!.server;
  }

  /** GET a path; resolves with the parsed JSON body of a 200, rejects with ApiRequestError otherwise. */
  async getJson(path: string, query: Record<string, string | undefined> = {}): Promise<unknown> {
    const url = new URL(this.server.replace(/\/$/, '') + path);
    for (const [k, v] of Object.entries(query)) if (v !== undefined) url.searchParams.set(k, v);
    const opts: https.RequestOptions = { method: 'GET', headers: { Accept: 'application/json' }, timeout: REQUEST_TIMEOUT_MS };
    await this.kc.applyToHTTPSOptions(opts);
    const mod = url.protocol === 'http:' ? http : https;
    return new Promise((resolve, reject) => {
      const req = mod.request(url, opts, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let body: unknown;
          try { body = JSON.parse(text); } catch { body = undefined; }
          if (res.statusCode === 200 && body !== undefined) return resolve(body);
          const st = (typeof body === 'object' && body !== null ? body : {}) as { reason?: string; message?: string; code?: number };
          reject(new ApiRequestError(res.statusCode ?? 0, st.reason ?? '', boundedError(st.message ?? text ?? `HTTP ${res.statusCode}`)));
        });
      });
      req.on('timeout', () => req.destroy(new Error(`no answer from ${url.host} in ${REQUEST_TIMEOUT_MS} ms`)));
      req.on('error', reject);
      req.end();
    });
  }

  async listPage(path: string, query: Record<string, string | undefined>): Promise<ListPage> {
    const body = await this.getJson(path, query) as { metadata?: { resourceVersion?: unknown; continue?: unknown }; items?: unknown };
    if (typeof body !== 'object' || body === null || !Array.isArray(body.items)) {
      throw new ApiRequestError(200, 'BadList', `the list of ${path} has no items array`);
    }
    const rv = body.metadata?.resourceVersion;
    const cont = body.metadata?.continue;
    return { resourceVersion: typeof rv === 'string' ? rv : '', continue: typeof cont === 'string' && cont ? cont : undefined, items: body.items };
  }
}
