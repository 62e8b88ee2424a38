// The CLI's only channel to node daemons: HTTP GET over each daemon's admin unix socket
// (no network from the root namespace).
import * as http from 'node:http';

export interface AdminResponse { status: number; body: string }

export function adminGet(socketPath: string, urlPath: string, timeoutMs = 2000): Promise<AdminResponse> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath, path: urlPath, method: 'GET', timeout: timeoutMs, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs}ms`)));
    req.on('error', reject);
    req.end();
  });
}

export async function adminGetJson<T>(socketPath: string, urlPath: string, timeoutMs = 2000): Promise<T> {
  const r = await adminGet(socketPath, urlPath, timeoutMs);
  if (r.status !== 200) throw new Error(`GET ${urlPath} answered ${r.status}: ${r.body.trim().slice(0, 200)}`);
  return JSON.parse(r.body) as T;
}

/** What `GET /debug/workloads` returns (daemon/redirection/enrolment.ts). */
export interface DaemonWorkloads {
  node?: string;
  pods: { uid: string; namespace: string; name: string; enrolled: boolean; enrolledBy?: string; ips?: string[] }[];
  failed?: { uid: string; namespace: string; name: string; error: string; code?: string }[];
}
