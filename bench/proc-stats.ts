// Reading process and machine CPU/memory from /proc and cgroup v2, for the benches. Linux only;
// every reader returns undefined (never throws) when the thing it reads is gone, so a bench
// reports "n/a" instead of a wrong number.
import * as fs from 'node:fs';

/** USER_HZ: the unit of utime/stime in /proc/<pid>/stat and of /proc/stat. 100 on every Linux ABI
 * Node runs on; the orchestrator passes `getconf CLK_TCK` when it can. */
export const DEFAULT_CLK_TCK = 100;

export interface ProcCpu {
  /** utime + stime of the whole thread group, in seconds. */
  cpuSeconds: number;
  /** Field 22 (starttime, clock ticks since boot): tells a reused pid from the process we meant. */
  startTime: string;
}

/** Parses /proc/<pid>/stat text (the command name may contain spaces and parentheses). */
export function parseProcStat(text: string, clkTck = DEFAULT_CLK_TCK): ProcCpu | undefined {
  const close = text.lastIndexOf(')');
  if (close < 0) return undefined;
  // After ") ": field 3 (state) is index 0, so field n is index n - 3.
  const f = text.slice(close + 2).trim().split(' ');
  const utime = Number(f[14 - 3]);
  const stime = Number(f[15 - 3]);
  const startTime = f[22 - 3];
  if (!Number.isFinite(utime) || !Number.isFinite(stime) || startTime === undefined) return undefined;
  return { cpuSeconds: (utime + stime) / clkTck, startTime };
}

export function readProcCpu(pid: number, clkTck = DEFAULT_CLK_TCK): ProcCpu | undefined {
  try {
    return parseProcStat(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'), clkTck);
  } catch {
    return undefined;
  }
}

/** VmRSS from /proc/<pid>/status text, in bytes. */
export function parseVmRss(text: string): number | undefined {
  const m = /^VmRSS:\s+(\d+)\s+kB$/m.exec(text);
  return m ? Number(m[1]) * 1024 : undefined;
}

export function readRssBytes(pid: number): number | undefined {
  try {
    return parseVmRss(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return undefined;
  }
}

/** voluntary_ctxt_switches from /proc/<pid>/status text: how often the process's main thread
 * (for Node and for HAProxy with nbthread 1: its event loop) went to sleep. Each sleep is one
 * wake-up later, the cost the paced phases are made of. */
export function parseVoluntarySwitches(text: string): number | undefined {
  const m = /^voluntary_ctxt_switches:\s+(\d+)$/m.exec(text);
  return m ? Number(m[1]) : undefined;
}

export function readVoluntarySwitches(pid: number): number | undefined {
  try {
    return parseVoluntarySwitches(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return undefined;
  }
}

/** usage_usec of a cgroup v2 directory's cpu.stat (everything in the cgroup, children included), in seconds. */
export function readCgroupCpuSeconds(cgroupDir: string): number | undefined {
  try {
    const m = /^usage_usec (\d+)$/m.exec(fs.readFileSync(`${cgroupDir}/cpu.stat`, 'utf8'));
    return m ? Number(m[1]) / 1e6 : undefined;
  } catch {
    return undefined;
  }
}

export interface MachineCpu { busy: number; total: number }

/** The aggregate `cpu` line of /proc/stat: busy = total - idle - iowait (all CPUs, in ticks). */
export function parseMachineCpu(text: string): MachineCpu | undefined {
  const line = text.split('\n').find((l) => l.startsWith('cpu '));
  if (!line) return undefined;
  // user nice system idle iowait irq softirq steal (guest, guest_nice are already in user/nice)
  const v = line.trim().split(/\s+/).slice(1, 9).map(Number);
  if (v.length < 4 || v.some((x) => !Number.isFinite(x))) return undefined;
  const total = v.reduce((a, b) => a + b, 0);
  return { busy: total - v[3]! - (v[4] ?? 0), total };
}

export function readMachineCpu(): MachineCpu | undefined {
  try {
    return parseMachineCpu(fs.readFileSync('/proc/stat', 'utf8'));
  } catch {
    return undefined;
  }
}
