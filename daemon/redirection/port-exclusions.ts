// Per-pod port exclusions from annotations: the ports a pod asks the mesh not to touch, as
// Istio users write them (traffic.sidecar.istio.io/exclude{In,Out}boundPorts) or with the
// nodemesh.io names. Pure. A malformed entry is reported and dropped: excluding less means
// capturing more, which is the safe side.

export const EXCLUSION_ANNOTATIONS = Object.freeze({
  inbound: ['traffic.sidecar.istio.io/excludeInboundPorts', 'nodemesh.io/exclude-inbound-ports'],
  outbound: ['traffic.sidecar.istio.io/excludeOutboundPorts', 'nodemesh.io/exclude-outbound-ports'],
});

/** At most this many ports per direction and pod (bounded map entries per pod). */
export const MAX_EXCLUDED_PORTS = 64;

export interface PortExclusions {
  inbound: number[];
  outbound: number[];
  /** What was ignored and why (annotation names and bounded excerpts of their values). */
  problems: string[];
}

function parseList(name: string, value: string, problems: string[]): number[] {
  const out = new Set<number>();
  for (const raw of value.split(',')) {
    const item = raw.trim();
    if (item === '') continue;
    const n = /^\d{1,5}$/.test(item) ? Number(item) : NaN;
    if (!Number.isInteger(n) || n < 1 || n > 65535) {
      problems.push(`${name}: ${JSON.stringify(item.slice(0, 32))} is not a port 1-65535; ignored`);
      continue;
    }
    out.add(n);
  }
  return [...out];
}

export function portExclusions(annotations: Readonly<Record<string, string>> | undefined): PortExclusions {
  const problems: string[] = [];
  const pick = (names: readonly string[]): number[] => {
    const all = new Set<number>();
    for (const name of names) {
      const v = annotations?.[name];
      if (typeof v === 'string') for (const p of parseList(name, v, problems)) all.add(p);
    }
    const sorted = [...all].sort((a, b) => a - b);
    if (sorted.length > MAX_EXCLUDED_PORTS) {
      problems.push(`${names[0]}: more than ${MAX_EXCLUDED_PORTS} ports; only the first ${MAX_EXCLUDED_PORTS} are excluded`);
      return sorted.slice(0, MAX_EXCLUDED_PORTS);
    }
    return sorted;
  };
  return { inbound: pick(EXCLUSION_ANNOTATIONS.inbound), outbound: pick(EXCLUSION_ANNOTATIONS.outbound), problems };
}
