// What the first bytes of a tunnel speak, pure: HTTP/2 with prior knowledge (the connection
// preface), HTTP/1.x (a request line), or anything else (passed through as TCP).
export type SniffResult = 'h2' | 'http1' | 'tcp' | 'need-more';

export const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
/** Long enough for any method, a path start and the version on a request line we accept. */
const MAX_PEEK = 4096;
const METHOD = /^[A-Z]{3,10} /;
const REQUEST_LINE = /^[A-Z]{3,10} [^\s]+ HTTP\/1\.[01]\r?\n/;

export function sniffProtocol(head: Buffer): SniffResult {
  const n = Math.min(head.length, H2_PREFACE.length);
  if (head.subarray(0, n).equals(H2_PREFACE.subarray(0, n))) return head.length >= H2_PREFACE.length ? 'h2' : 'need-more';
  const text = head.subarray(0, MAX_PEEK).toString('latin1');
  if (REQUEST_LINE.test(text)) return 'http1';
  const methodPrefix = /^[A-Z]{0,10}$/.test(text) || METHOD.test(text);
  if (methodPrefix && !text.includes('\n') && head.length < MAX_PEEK) return 'need-more';
  return 'tcp';
}

/** Service port hints, as Istio reads them: appProtocol first, then the port name's prefix. */
export function declaredProtocol(port: { name?: string; appProtocol?: string }): 'http' | 'tcp' | undefined {
  const p = (port.appProtocol ?? port.name?.split('-')[0] ?? '').toLowerCase();
  if (['http', 'http2', 'h2c', 'grpc', 'kubernetes.io/h2c', 'grpc-web'].includes(p)) return 'http';
  if (['tcp', 'tls', 'https', 'mysql', 'mongo', 'redis'].includes(p)) return 'tcp';
  return undefined;
}
