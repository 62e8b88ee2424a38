// Endpoint choice for Service VIPs: power of two choices on active connections (as Linkerd
// and Envoy's least-request do): two random candidates, the less loaded wins. Counts are
// the only state; the choice is a pure function of (candidates, counts, random).
import type { Endpoint } from '../state/snapshot';

export interface EndpointPicker {
  pick(endpoints: readonly Endpoint[]): Endpoint | undefined;
}

export class PowerOfTwoChoices implements EndpointPicker {
  private readonly active = new Map<string, number>();

  constructor(private readonly random: () => number = Math.random) {}

  pick(endpoints: readonly Endpoint[]): Endpoint | undefined {
    if (endpoints.length <= 1) return endpoints[0];
    const i = Math.floor(this.random() * endpoints.length);
    let j = Math.floor(this.random() * (endpoints.length - 1));
    if (j >= i) j++;
    const a = endpoints[i];
    const b = endpoints[j];
    return this.load(a.ip) <= this.load(b.ip) ? a : b;
  }

  private load(ip: string): number { return this.active.get(ip) ?? 0; }

  /** Marks a connection to an endpoint open; the returned function marks it closed. */
  track(ip: string): () => void {
    this.active.set(ip, this.load(ip) + 1);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const n = this.load(ip) - 1;
      if (n <= 0) this.active.delete(ip); else this.active.set(ip, n);
    };
  }
}
