// Gateway API durations (GEP-2257): one to four `<digits><unit>` parts, units h, m, s, ms,
// e.g. `1h`, `500ms`, `1m30s`. Stricter than Go's time.ParseDuration on purpose: the spec's
// validation accepts nothing else, and a value it would refuse must not route differently here.
const DURATION = /^([0-9]{1,5}(h|ms|m|s)){1,4}$/;
const PART = /([0-9]{1,5})(h|ms|m|s)/g;
const UNIT_MS: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1_000, ms: 1 };

/** Milliseconds, or undefined when `text` is not a Gateway API duration. */
export function parseGatewayDuration(text: string): number | undefined {
  if (!DURATION.test(text)) return undefined;
  let ms = 0;
  for (const m of text.matchAll(PART)) ms += Number(m[1]) * UNIT_MS[m[2]];
  return ms;
}
