// The host machine as the sandbox sees it: running system tools (ip, nft, nsenter),
// checking prerequisites, and telling our own processes apart from everyone else's.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { InstallerErrors } from '../errors';

/** System tools the sandbox drives, with the Debian package that ships each. */
export const REQUIRED_TOOLS: readonly { tool: string; pkg: string }[] = Object.freeze([
  { tool: 'ip', pkg: 'iproute2' },
  { tool: 'nft', pkg: 'nftables' },
  { tool: 'nsenter', pkg: 'util-linux' },
  { tool: 'mount', pkg: 'mount' },
  { tool: 'sh', pkg: 'dash' },
]);

const SYSTEM_PATH = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

/** Absolute path of a tool, searching PATH plus the sbin directories sudo sometimes drops. */
export function findTool(tool: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(':').filter(Boolean), ...SYSTEM_PATH];
  for (const d of dirs) {
    const p = path.join(d, tool);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      if (fs.statSync(p).isFile()) return p;
    } catch { /* next */ }
  }
  return undefined;
}

const toolCache = new Map<string, string>();

export function tool(name: string): string {
  let p = toolCache.get(name);
  if (p) return p;
  p = findTool(name);
  if (!p) {
    const known = REQUIRED_TOOLS.find((t) => t.tool === name);
    throw InstallerErrors.NODEMESH_E_SANDBOX_MISSING_TOOL({ tool: name, pkg: known?.pkg ?? name });
  }
  toolCache.set(name, p);
  return p;
}

export function checkRoot(): void {
  if (typeof process.getuid === 'function' && process.getuid() !== 0) throw InstallerErrors.NODEMESH_E_SANDBOX_NOT_ROOT(undefined);
}

export function checkTools(): void {
  for (const t of REQUIRED_TOOLS) tool(t.tool);
}

export interface RunResult { status: number; stdout: string; stderr: string }

/** Runs a tool synchronously; throws NODEMESH_E_SANDBOX_COMMAND with its stderr on failure. */
export function run(cmd: string, args: readonly string[], opts: { input?: string; allowFail?: boolean } = {}): RunResult {
  const r = spawnSync(tool(cmd), args, { input: opts.input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'], timeout: 30_000 });
  const res: RunResult = { status: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
  if (!opts.allowFail && (r.error || res.status !== 0)) {
    const reason = r.error ? r.error.message : (res.stderr.trim() || `exit status ${res.status}`);
    throw InstallerErrors.NODEMESH_E_SANDBOX_COMMAND({ command: [cmd, ...args].join(' ').slice(0, 300), reason });
  }
  return res;
}

// --- processes ---------------------------------------------------------------------------

/** Enough to recognise a process again: pid plus its kernel start time (pids get reused). */
export interface ProcessRef { pid: number; startTime: string }

/** Field 22 of /proc/<pid>/stat (start time in clock ticks since boot), or undefined if gone. */
export function processStartTime(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // comm (field 2) may contain spaces and parentheses: split after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (fields[0] === 'Z' || fields[0] === 'X') return undefined; // exited, not yet reaped
    return fields[19]; // field 22 overall: 3 + 19
  } catch {
    return undefined;
  }
}

export function processRef(pid: number): ProcessRef | undefined {
  const startTime = processStartTime(pid);
  return startTime === undefined ? undefined : { pid, startTime };
}

/** True when the recorded process still exists and is the same process (same start time). */
export function isAlive(ref: ProcessRef | undefined): boolean {
  return !!ref && processStartTime(ref.pid) === ref.startTime;
}

/** The cgroup v2 path of a process, relative to the cgroup2 root ('/nodemesh-sandbox/...'). */
export function processCgroup(pid: number): string | undefined {
  try {
    const line = fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n').find((l) => l.startsWith('0::'));
    return line?.slice(3);
  } catch {
    return undefined;
  }
}

/** Sends a signal to a process we recorded, but only if it is still that process. */
export function signalIfOurs(ref: ProcessRef | undefined, signal: NodeJS.Signals): boolean {
  if (!isAlive(ref)) return false;
  try {
    process.kill(ref!.pid, signal);
    return true;
  } catch {
    return false;
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Last lines of a log file, for error messages. */
export function logTail(file: string, lines = 15): string | undefined {
  try {
    const text = fs.readFileSync(file, 'utf8');
    const all = text.trimEnd().split('\n');
    return all.slice(-lines).join('\n');
  } catch {
    return undefined;
  }
}

// --- bpffs -------------------------------------------------------------------------------

export const BPFFS = '/sys/fs/bpf';

export function isBpffsMounted(at = BPFFS, mountinfo = '/proc/self/mountinfo'): boolean {
  try {
    return fs.readFileSync(mountinfo, 'utf8').split('\n').some((line) => {
      const sep = line.indexOf(' - ');
      if (sep < 0) return false;
      return line.slice(sep + 3).split(' ')[0] === 'bpf' && line.slice(0, sep).split(' ')[4] === at;
    });
  } catch {
    return false;
  }
}

/** Mounts bpffs at /sys/fs/bpf when it is not mounted; returns whether it did. */
export function ensureBpffs(): boolean {
  if (isBpffsMounted()) return false;
  try {
    fs.mkdirSync(BPFFS, { recursive: true });
    run('mount', ['-t', 'bpf', 'bpf', BPFFS]);
  } catch (e) {
    throw InstallerErrors.NODEMESH_E_SANDBOX_BPFFS({ path: BPFFS, reason: (e as Error).message }, { cause: e });
  }
  return true;
}
