// A Kubernetes API server for tests: HTTPS with a throwaway CA, bearer tokens, RBAC-style
// authorization, discovery, the verbs with real semantics (see api-storage.ts, watch-stream.ts)
// and the wire format of a kube-apiserver v1.35: JSON bodies, Status objects for failures,
// chunked watch streams, Audit-Id and Warning headers. Tests drive it in-process
// (startTestApiServer) or as a process (main.ts); either way clients talk to it through a
// kubeconfig like any cluster. No controllers run, as with a bare API server.
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as os from 'node:os';
import * as path from 'node:path';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { randomBytes, randomInt, randomUUID } from 'node:crypto';
import YAML from 'yaml';
import { ApiError, Statuses, type Status } from './status';
import { ApiStorage, type FieldValidation, type ListQuery, type WriteResult } from './api-storage';
import { apiGroup, apiGroupList, apiResourceList, resourceKey, type KubeObject, type ResourceType } from './resource-types';
import { routeOf } from './request-path';
import { WatchStream } from './watch-stream';
import { makeServingCertificates } from './serving-certificates';
import { DEFAULT_ISSUER, TokenIssuer } from './service-account-tokens';
import { nonResourceAllowed, resourceAllowed, type PolicyRule, type UserInfo } from './authorization';

export interface TestUser {
  token: string;
  username: string;
  groups?: string[];
  /** What this user may do besides what stored RBAC objects grant. */
  rules?: PolicyRule[];
}

export interface TestApiServerOptions {
  /** Port to listen on (default: any free port). */
  port?: number;
  /** Address to listen on (default 127.0.0.1). */
  host?: string;
  /** The token of the kubeconfig's user, a cluster admin (system:masters). Default: random. */
  adminToken?: string;
  /** More users, e.g. one limited to some verbs to provoke 403 Forbidden. */
  users?: TestUser[];
  /** How many change events the history keeps before older revisions are compacted (410). */
  historyLimit?: number;
  /** How often watches with allowWatchBookmarks get a BOOKMARK (ms; the real server: ~1 min). */
  bookmarkIntervalMs?: number;
  /** Watch duration when the client sends no timeoutSeconds (default 1800-3600 s, as minRequestTimeout). */
  defaultWatchTimeoutSeconds?: number;
  /** Delay before a new CRD is Established and its kind served (ms). */
  crdEstablishDelayMs?: number;
  /** Audiences the API server accepts for service account bearer tokens. */
  apiAudiences?: string[];
  /** Where the kubeconfig goes (default: a new temp directory). */
  kubeconfigDir?: string;
  /** Namespaces the API server makes at start (default, kube-system, kube-public, kube-node-lease). */
  systemNamespaces?: string[];
  /** The `kubernetes` Service in `default` that every API server maintains (default true). */
  kubernetesService?: boolean;
}

export interface RequestRecord { method: string; path: string; query: string; user: string; code: number; verb?: string; resource?: string }

export interface FailureInjection {
  /** Resource plural (`pods`), optionally `group/plural` (`apps/deployments`). */
  resource: string;
  /** How many matching requests fail. */
  count: number;
  /** 500 (InternalError), 429 (TooManyRequests), 503 (ServiceUnavailable)... */
  code: number;
  /** Retry-After header and details.retryAfterSeconds (429, 503). */
  retryAfterSeconds?: number;
  /** Only these verbs (get, list, watch, create, update, patch, delete). Default: all. */
  verbs?: string[];
}

/** Direct access to the objects, as admin, through the same semantics as the API. */
export interface SeedApi {
  readonly revision: number;
  create(obj: KubeObject): KubeObject;
  /** Server-side apply (force by default) as `manager` (default `test`). */
  apply(obj: KubeObject, opts?: { manager?: string; force?: boolean }): KubeObject;
  update(obj: KubeObject): KubeObject;
  /** Merge-patches .status through the status subresource, as a kubelet or controller would. */
  patchStatus(apiVersion: string, kind: string, name: string, namespace: string | undefined, status: Record<string, unknown>, manager?: string): KubeObject;
  get(apiVersion: string, kind: string, name: string, namespace?: string): KubeObject | undefined;
  list(apiVersion: string, kind: string, namespace?: string): KubeObject[];
  /** Deletes as the API would (gracePeriodSeconds 0 by default: a pod goes at once). */
  delete(apiVersion: string, kind: string, name: string, namespace?: string, opts?: { gracePeriodSeconds?: number }): void;
  /** A service account token as TokenRequest issues it. */
  issueToken(namespace: string, serviceAccount: string, opts?: { audiences?: string[]; expirationSeconds?: number; boundPod?: string }): string;
}

export interface Faults {
  /** Ends every open watch stream now (the client sees a clean end of body). Returns how many. */
  closeWatches(): number;
  /** Forgets all history so far: watches and exact lists from older revisions get 410. */
  compact(): void;
  /** Stops accepting connections and drops the open ones, then listens again on the same port
   * after `ms`. Resolves when it is back. */
  goAway(ms: number): Promise<void>;
  /** The next `count` requests of a resource fail with `code`. */
  failNext(f: FailureInjection): void;
  /** Sends a BOOKMARK on every open watch that allows them. */
  sendBookmarks(): void;
}

export interface TestApiServer {
  url: string;
  port: number;
  caPem: string;
  adminToken: string;
  /** username -> token, for the admin and every configured user. */
  tokens: Record<string, string>;
  kubeconfigPath: string;
  /** Writes another kubeconfig for `token` (same cluster); returns its path. */
  writeKubeconfig(token: string, userName?: string): string;
  store: SeedApi;
  faults: Faults;
  /** Every request answered, in order (method, path, query, user, code). */
  requests: RequestRecord[];
  openWatches(): number;
  close(): Promise<void>;
}

const KUBE_VERSION = {
  major: '1', minor: '35', emulationMajor: '1', emulationMinor: '35', minCompatibilityMajor: '1', minCompatibilityMinor: '34',
  gitVersion: 'v1.35.0', gitCommit: '0000000000000000000000000000000000000000', gitTreeState: 'clean', buildDate: '2026-01-01T00:00:00Z',
  goVersion: 'go1.25.0', compiler: 'gc', platform: 'linux/amd64',
};
const MAX_BODY_BYTES = 3 * 1024 * 1024;
/** Go's http server sends Content-Length when the handler's whole output fits its buffer. */
const GO_CHUNK_THRESHOLD = 2048;

function goJson(value: unknown, pretty: boolean): string {
  // Go's encoder escapes <, > and & (see 25: "\u003cnil\u003e").
  return JSON.stringify(value, null, pretty ? 2 : undefined).replace(/</g, '\\u003c').replace(/>/g, '\\u003e').replace(/&/g, '\\u0026');
}

/** The field manager of a non-apply write when none is given: the user agent up to the first '/'. */
function managerOf(req: IncomingMessage, q: URLSearchParams): string {
  const m = q.get('fieldManager');
  if (m) return m;
  const ua = req.headers['user-agent'] ?? 'unknown';
  return ua.split('/')[0] || 'unknown';
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) {
        reject(new ApiError({ ...Statuses.badRequest('the request body is too large'), code: 413, reason: 'RequestEntityTooLarge', message: 'Request entity too large: limit is 3145728' }));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

export async function startTestApiServer(opts: TestApiServerOptions = {}): Promise<TestApiServer> {
  const host = opts.host ?? '127.0.0.1';
  const certs = await makeServingCertificates(host === '127.0.0.1' || host === 'localhost' ? [] : [host]);
  const issuer = new TokenIssuer(DEFAULT_ISSUER);
  const apiAudiences = opts.apiAudiences ?? [DEFAULT_ISSUER];
  const storage = new ApiStorage({ historyLimit: opts.historyLimit ?? 10000, issuer, apiAudiences, crdEstablishDelayMs: opts.crdEstablishDelayMs ?? 20 });
  const adminToken = opts.adminToken ?? randomBytes(24).toString('base64url');
  const users = new Map<string, TestUser>();
  users.set(adminToken, { token: adminToken, username: 'admin', groups: ['system:masters'] });
  for (const u of opts.users ?? []) users.set(u.token, u);
  const watches = new Set<WatchStream>();
  const sockets = new Set<Socket>();
  const injections: FailureInjection[] = [];
  const requests: RequestRecord[] = [];
  const bookmarkIntervalMs = opts.bookmarkIntervalMs ?? 5000;
  const defaultWatchTimeout = () => opts.defaultWatchTimeoutSeconds ?? 1800 + randomInt(1800);

  // What a fresh API server makes itself: the system namespaces and the kubernetes Service.
  for (const ns of opts.systemNamespaces ?? ['default', 'kube-node-lease', 'kube-public', 'kube-system']) {
    storage.create(storage.typeOf('v1', 'Namespace'), undefined, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } }, { manager: 'kube-apiserver' });
  }
  if (opts.kubernetesService !== false && storage.store.get('/namespaces', undefined, 'default')) {
    storage.create(storage.typeOf('v1', 'Service'), 'default', {
      apiVersion: 'v1', kind: 'Service',
      metadata: { name: 'kubernetes', labels: { component: 'apiserver', provider: 'kubernetes' } },
      spec: { clusterIP: '10.96.0.1', ports: [{ name: 'https', port: 443, protocol: 'TCP', targetPort: 6443 }], sessionAffinity: 'None', type: 'ClusterIP' },
    }, { manager: 'kube-apiserver' });
  }

  function authenticate(req: IncomingMessage): UserInfo | 'invalid' {
    const h = req.headers.authorization;
    if (h === undefined) return { username: 'system:anonymous', groups: ['system:unauthenticated'] };
    const m = /^Bearer\s+(\S+)\s*$/i.exec(h);
    if (!m) return 'invalid';
    const u = users.get(m[1]);
    if (u) return { username: u.username, groups: [...(u.groups ?? []), 'system:authenticated'] };
    const r = storage.reviewToken(m[1], apiAudiences);
    if ('error' in r) return 'invalid';
    return { username: r.user.username, uid: r.user.uid, groups: r.user.groups, extra: r.user.extra };
  }

  const rbac = {
    get clusterRoles() { return storage.store.list('rbac.authorization.k8s.io/clusterroles'); },
    get clusterRoleBindings() { return storage.store.list('rbac.authorization.k8s.io/clusterrolebindings'); },
    roles: (ns: string) => storage.store.list('rbac.authorization.k8s.io/roles', ns),
    roleBindings: (ns: string) => storage.store.list('rbac.authorization.k8s.io/rolebindings', ns),
  };

  function send(req: IncomingMessage, res: ServerResponse, q: URLSearchParams, code: number, body: unknown, headers: Record<string, string | string[]> = {}): void {
    const ua = req.headers['user-agent'] ?? '';
    const pretty = q.get('pretty') === 'true' || /^(curl|Wget|Mozilla)\//.test(ua);
    const text = goJson(body, pretty);
    for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
    res.setHeader('Content-Type', 'application/json');
    if (Buffer.byteLength(text) < GO_CHUNK_THRESHOLD) {
      res.setHeader('Content-Length', Buffer.byteLength(text));
      res.writeHead(code);
      res.end(text);
    } else {
      res.writeHead(code);
      res.write(text);
      res.end();
    }
  }

  function sendStatus(req: IncomingMessage, res: ServerResponse, q: URLSearchParams, s: Status, headers: Record<string, string> = {}): void {
    const extra: Record<string, string> = { ...headers };
    if (s.code === 403) extra['X-Content-Type-Options'] = 'nosniff';
    if (s.details?.retryAfterSeconds !== undefined && (s.code === 429 || s.code === 503 || s.code === 504)) extra['Retry-After'] = String(s.details.retryAfterSeconds);
    send(req, res, q, s.code, s, extra);
  }

  function sendPlain404(res: ServerResponse): void {
    res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8', 'X-Content-Type-Options': 'nosniff', 'Content-Length': '19' });
    res.end('404 page not found\n');
  }

  function injected(t: ResourceType, verb: string): Status | undefined {
    const i = injections.findIndex((f) => (f.resource === t.plural || f.resource === `${t.group}/${t.plural}`) && (!f.verbs || f.verbs.includes(verb)));
    if (i < 0) return undefined;
    const f = injections[i];
    if (--f.count <= 0) injections.splice(i, 1);
    if (f.code === 429) return Statuses.tooManyRequests(f.retryAfterSeconds ?? 1);
    if (f.code === 503) return { ...Statuses.serviceUnavailable('the server is currently unable to handle the request'), ...(f.retryAfterSeconds ? { details: { retryAfterSeconds: f.retryAfterSeconds } } : {}) };
    if (f.code === 500) return Statuses.internalError('injected failure');
    return { ...Statuses.internalError('injected failure'), code: f.code };
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<{ user: string; verb?: string; resource?: string }> {
    res.setHeader('Audit-Id', randomUUID());
    res.setHeader('Cache-Control', 'no-cache, private');
    const url = new URL(req.url ?? '/', 'https://localhost');
    const q = url.searchParams;
    const user = authenticate(req);
    if (user === 'invalid') {
      sendStatus(req, res, q, Statuses.unauthorized());
      return { user: '<invalid token>' };
    }
    const method = req.method ?? 'GET';
    const route = routeOf(method, url.pathname, q, storage.registry);
    switch (route.kind) {
      case 'notFoundPlain':
        if (!nonResourceAllowed(user, url.pathname)) sendStatus(req, res, q, nonResourceForbidden(user.username, url.pathname, method));
        else sendPlain404(res);
        return { user: user.username };
      case 'notFoundStatus': sendStatus(req, res, q, Statuses.resourceNotFound()); return { user: user.username };
      case 'methodNotAllowed': sendStatus(req, res, q, Statuses.methodNotAllowed()); return { user: user.username };
      case 'discovery': case 'group': case 'groupVersion': {
        if (!nonResourceAllowed(user, url.pathname)) {
          sendStatus(req, res, q, nonResourceForbidden(user.username, url.pathname, method));
          return { user: user.username };
        }
        if (route.kind === 'discovery' && route.doc === 'health') {
          res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8', 'X-Content-Type-Options': 'nosniff' });
          res.end('ok');
        } else if (route.kind === 'discovery') {
          const docs: Record<string, unknown> = {
            version: KUBE_VERSION,
            api: { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: `${host}:${currentPort}` }] },
            apis: apiGroupList(storage.registry),
          };
          send(req, res, q, 200, docs[route.doc]);
        } else if (route.kind === 'group') {
          const versions = storage.registry.groupVersions().filter((gv) => gv.group === route.group).map((gv) => gv.version);
          send(req, res, q, 200, { kind: 'APIGroup', apiVersion: 'v1', ...apiGroup(route.group, versions) });
        } else {
          send(req, res, q, 200, apiResourceList(storage.registry, route.group, route.version));
        }
        return { user: user.username };
      }
      case 'resource': break;
    }
    const { type: t, namespace, name, subresource, verb } = route;
    const attrs = { verb, group: t.group, resource: t.plural, subresource, namespace, name };
    const staticRules = [...users.values()].find((u) => u.username === user.username)?.rules ?? [];
    if (!resourceAllowed(user, attrs, staticRules, rbac)) {
      sendStatus(req, res, q, Statuses.forbidden(user.username, verb, { group: t.group, plural: t.plural, subresource }, namespace, name));
      return { user: user.username, verb, resource: t.plural };
    }
    const failure = injected(t, verb);
    if (failure) {
      sendStatus(req, res, q, failure);
      return { user: user.username, verb, resource: t.plural };
    }
    const manager = managerOf(req, q);
    const fv = (q.get('fieldValidation') ?? 'Warn') as FieldValidation;
    const dryRun = q.get('dryRun') === 'All';
    const ct = (req.headers['content-type'] ?? 'application/json').split(';')[0].trim();
    const sendWrite = (r: WriteResult) => send(req, res, q, r.code, r.object, r.warnings.length > 0 ? { Warning: r.warnings.map((w) => `299 - ${JSON.stringify(w)}`) } : {});

    if (verb === 'watch') {
      const filter = storage.parseFilter(t, namespace, listQuery(q));
      const sie = q.get('sendInitialEvents');
      if (sie === 'true' && (q.get('resourceVersionMatch') !== 'NotOlderThan' || q.get('allowWatchBookmarks') !== 'true')) {
        throw new ApiError(Statuses.invalid('ListOptions', 'meta.k8s.io', '', [
          ...(q.get('resourceVersionMatch') !== 'NotOlderThan' ? [{ reason: 'FieldValueForbidden', message: 'Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan', field: 'resourceVersionMatch' }] : []),
          ...(q.get('allowWatchBookmarks') !== 'true' ? [{ reason: 'FieldValueForbidden', message: 'Forbidden: sendInitialEvents requires setting allowWatchBookmarks to true', field: 'allowWatchBookmarks' }] : []),
        ]));
      }
      const w = new WatchStream(res, storage, t, filter, {
        bookmarkIntervalMs,
        defaultTimeoutSeconds: defaultWatchTimeout,
        encode: (v) => goJson(v, false),
      }, (ws) => watches.delete(ws));
      watches.add(w);
      w.start({
        resourceVersion: q.get('resourceVersion') ?? undefined,
        resourceVersionMatch: q.get('resourceVersionMatch') ?? undefined,
        allowWatchBookmarks: q.get('allowWatchBookmarks') === 'true' || q.get('allowWatchBookmarks') === '1',
        sendInitialEvents: sie === null ? undefined : sie === 'true',
        timeoutSeconds: q.get('timeoutSeconds') ? Number(q.get('timeoutSeconds')) : undefined,
      });
      return { user: user.username, verb, resource: t.plural };
    }

    const raw = method === 'GET' ? '' : await readBody(req);
    switch (verb) {
      case 'get':
        send(req, res, q, 200, storage.get(t, namespace, name!));
        break;
      case 'list':
        send(req, res, q, 200, storage.list(t, namespace, listQuery(q)));
        break;
      case 'create': {
        const body = ApiStorage.parseBody(raw, ct, "couldn't get version/kind; json parse error");
        if (subresource === 'token') send(req, res, q, 201, storage.tokenRequest(namespace!, name!, body, manager));
        else if (t.kind === 'TokenReview') send(req, res, q, 201, storage.tokenReview(body, manager));
        else sendWrite(storage.create(t, namespace, body, { manager, fieldValidation: fv, dryRun }));
        break;
      }
      case 'update':
        sendWrite(storage.update(t, namespace, name!, ApiStorage.parseBody(raw, ct, "couldn't get version/kind; json parse error"), { manager, fieldValidation: fv, dryRun, subresource: subresource as 'status' | undefined }));
        break;
      case 'patch': {
        const force = q.get('force') === 'true';
        const isApply = ct === 'application/apply-patch+yaml';
        if (!isApply && force) throw new ApiError(Statuses.invalid('PatchOptions', 'meta.k8s.io', '', [{ reason: 'FieldValueForbidden', message: 'Forbidden: may not be specified for non-apply patch', field: 'force' }]));
        sendWrite(storage.patch(t, namespace, name!, ct, raw, { manager: isApply ? (q.get('fieldManager') ?? '') : manager, fieldValidation: fv, dryRun, force, subresource: subresource as 'status' | undefined }));
        break;
      }
      case 'delete': {
        const options = raw.trim() === '' ? {} : (ApiStorage.parseBody(raw, 'json', 'error decoding DeleteOptions') as Record<string, unknown>);
        if (q.get('gracePeriodSeconds') !== null) options.gracePeriodSeconds = Number(q.get('gracePeriodSeconds'));
        if (dryRun) options.dryRun = true;
        const r = storage.delete(t, namespace, name!, options);
        send(req, res, q, r.code, r.body);
        break;
      }
      case 'deletecollection': {
        const options = raw.trim() === '' ? {} : (ApiStorage.parseBody(raw, 'json', 'error decoding DeleteOptions') as Record<string, unknown>);
        if (q.get('gracePeriodSeconds') !== null) options.gracePeriodSeconds = Number(q.get('gracePeriodSeconds'));
        send(req, res, q, 200, storage.deleteCollection(t, namespace, listQuery(q), options));
        break;
      }
      default:
        sendStatus(req, res, q, Statuses.methodNotAllowed());
    }
    return { user: user.username, verb, resource: t.plural };
  }

  function listQuery(q: URLSearchParams): ListQuery {
    const limit = q.get('limit');
    return {
      limit: limit ? Number(limit) : undefined,
      continue: q.get('continue') ?? undefined,
      resourceVersion: q.get('resourceVersion') ?? undefined,
      resourceVersionMatch: q.get('resourceVersionMatch') ?? undefined,
      labelSelector: q.get('labelSelector') ?? undefined,
      fieldSelector: q.get('fieldSelector') ?? undefined,
    };
  }

  function onRequest(req: IncomingMessage, res: ServerResponse): void {
    const url = req.url ?? '/';
    const record = (info: { user: string; verb?: string; resource?: string }) => {
      const u = new URL(url, 'https://localhost');
      requests.push({ method: req.method ?? 'GET', path: u.pathname, query: u.search, user: info.user, code: res.statusCode, ...(info.verb ? { verb: info.verb } : {}), ...(info.resource ? { resource: info.resource } : {}) });
    };
    handle(req, res).then(record, (e: unknown) => {
      if (!res.headersSent) {
        const s = e instanceof ApiError ? e.status : Statuses.internalError((e as Error)?.message ?? String(e));
        const q = new URL(url, 'https://localhost').searchParams;
        sendStatus(req, res, q, s, e instanceof ApiError ? e.headers : {});
      } else if (!res.writableEnded) {
        res.end();
      }
      record({ user: '?' });
    });
  }

  function nonResourceForbidden(username: string, p: string, method: string): Status {
    const verb = method.toLowerCase();
    return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: `forbidden: User "${username}" cannot ${verb} path "${p}"`, reason: 'Forbidden', details: {}, code: 403 };
  }

  const server = https.createServer({ key: certs.keyPem, cert: certs.certPem }, onRequest);
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.on('secureConnection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  const listen = (port: number) => new Promise<number>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as { port: number }).port);
    });
  });
  let currentPort = await listen(opts.port ?? 0);
  const url = `https://${host.includes(':') ? `[${host}]` : host}:${currentPort}`;

  const kubeconfigDir = opts.kubeconfigDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'nodemesh-test-apiserver-'));
  let kubeconfigCount = 0;
  function writeKubeconfig(token: string, userName = 'admin'): string {
    const doc = {
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'nodemesh-test', cluster: { server: url, 'certificate-authority-data': Buffer.from(certs.caPem).toString('base64') } }],
      users: [{ name: userName, user: { token } }],
      contexts: [{ name: 'nodemesh-test', context: { cluster: 'nodemesh-test', user: userName, namespace: 'default' } }],
      'current-context': 'nodemesh-test',
      preferences: {},
    };
    const file = path.join(kubeconfigDir, kubeconfigCount++ === 0 ? 'kubeconfig' : `kubeconfig-${userName}-${kubeconfigCount}`);
    fs.writeFileSync(file, YAML.stringify(doc), { mode: 0o600 });
    return file;
  }
  const kubeconfigPath = writeKubeconfig(adminToken);

  const seedOpts = { manager: 'test' };
  const store: SeedApi = {
    get revision() { return storage.store.revision; },
    create: (obj) => storage.create(storage.typeOf(obj.apiVersion, obj.kind), obj.metadata?.namespace, structuredClone(obj), seedOpts).object,
    apply: (obj, o = {}) => {
      const t = storage.typeOf(obj.apiVersion, obj.kind);
      return storage.patch(t, obj.metadata?.namespace, obj.metadata.name, 'application/apply-patch+yaml', JSON.stringify(obj), { manager: o.manager ?? 'test', force: o.force ?? true }).object;
    },
    update: (obj) => storage.update(storage.typeOf(obj.apiVersion, obj.kind), obj.metadata?.namespace, obj.metadata.name, structuredClone(obj), seedOpts).object,
    patchStatus: (apiVersion, kind, name, namespace, status, manager = 'test') => {
      const t = storage.typeOf(apiVersion, kind);
      return storage.patch(t, namespace, name, 'application/merge-patch+json', JSON.stringify({ status }), { manager, subresource: t.subresources.includes('status') ? 'status' : undefined }).object;
    },
    get: (apiVersion, kind, name, namespace) => {
      const t = storage.typeOf(apiVersion, kind);
      const o = storage.store.get(resourceKey(t), t.namespaced ? namespace : undefined, name);
      return o;
    },
    list: (apiVersion, kind, namespace) => storage.store.list(resourceKey(storage.typeOf(apiVersion, kind)), namespace),
    delete: (apiVersion, kind, name, namespace, o = {}) => {
      storage.delete(storage.typeOf(apiVersion, kind), namespace, name, { gracePeriodSeconds: o.gracePeriodSeconds ?? 0 });
    },
    issueToken: (namespace, serviceAccount, o = {}) => {
      const body = { spec: { audiences: o.audiences, expirationSeconds: o.expirationSeconds, ...(o.boundPod ? { boundObjectRef: { kind: 'Pod', apiVersion: 'v1', name: o.boundPod } } : {}) } };
      return storage.tokenRequest(namespace, serviceAccount, body, 'test').status.token as string;
    },
  };

  const faults: Faults = {
    closeWatches() {
      const n = watches.size;
      for (const w of [...watches]) w.end();
      return n;
    },
    compact() { storage.store.compact(); },
    async goAway(ms: number) {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const w of [...watches]) w.destroy();
        for (const s of sockets) s.destroy();
      });
      await new Promise((r) => setTimeout(r, ms));
      currentPort = await listen(currentPort);
    },
    failNext(f) { injections.push({ ...f }); },
    sendBookmarks() { for (const w of watches) w.bookmark(false); },
  };

  const tokens: Record<string, string> = {};
  for (const u of users.values()) tokens[u.username] = u.token;

  return {
    url,
    get port() { return currentPort; },
    caPem: certs.caPem,
    adminToken,
    tokens,
    kubeconfigPath,
    writeKubeconfig,
    store,
    faults,
    requests,
    openWatches: () => watches.size,
    async close() {
      storage.close();
      for (const w of [...watches]) w.destroy();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      });
      if (opts.kubeconfigDir === undefined) fs.rmSync(kubeconfigDir, { recursive: true, force: true });
    },
  };
}

