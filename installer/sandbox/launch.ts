// Starting a process inside a cgroup and a network namespace. A small shell wrapper moves
// itself into the cgroup first and then execs nsenter, so the process is in the cgroup
// from its first instruction (no window where a pod runs outside its cgroup, or a daemon
// outside the node cgroup its eBPF programs watch). nsenter (not `ip netns exec`, which
// remounts /sys and hides /sys/fs/bpf) enters the namespace and execs the program, so the
// recorded pid is the program's.
import * as fs from 'node:fs';
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { tool } from './host';

const ENTER = 'echo $$ > "$2/cgroup.procs" || exit 126; nsenter=$1; netns=$3; shift 3; exec "$nsenter" --net="$netns" -- "$@"';
/** Runs the argv and records its exit status (the pod's "container runtime"). */
const SUPERVISE = 'exitfile=$1; shift; "$@"; code=$?; echo $code > "$exitfile"; exit $code';

export function enterArgv(cgroup: string, netnsPath: string, argv: readonly string[]): string[] {
  return ['-c', ENTER, 'nmsb-enter', tool('nsenter'), cgroup, netnsPath, ...argv];
}

export function supervisedArgv(exitFile: string, argv: readonly string[]): string[] {
  return [tool('sh'), '-c', SUPERVISE, 'nmsb-container', exitFile, ...argv];
}

export interface LaunchOptions {
  cgroup: string;
  netnsPath: string;
  argv: readonly string[];
  env: Record<string, string>;
  cwd?: string;
  /** Append stdout and stderr to this file, in a new session (detached): it outlives the CLI. */
  logFile?: string;
}

/** Detached launch with output to a log file; returns once the process exists. */
export function launchDetached(o: LaunchOptions & { logFile: string }): ChildProcess {
  const fd = fs.openSync(o.logFile, 'a');
  try {
    const child = spawn(tool('sh'), enterArgv(o.cgroup, o.netnsPath, o.argv), {
      cwd: o.cwd ?? '/',
      env: o.env,
      stdio: ['ignore', fd, fd],
      detached: true,
    });
    child.unref();
    return child;
  } finally {
    fs.closeSync(fd);
  }
}

/** Foreground launch with the caller's stdio (for `local exec`). */
export function launchAttached(o: LaunchOptions, stdio: StdioOptions = 'inherit'): ChildProcess {
  return spawn(tool('sh'), enterArgv(o.cgroup, o.netnsPath, o.argv), {
    cwd: o.cwd ?? '/',
    env: o.env,
    stdio,
  });
}
