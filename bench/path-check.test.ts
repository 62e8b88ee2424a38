// The path check per mode (pure): each mode's claim against the evidence.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkPath, type ConnRecordLite, type PathExpectation } from './path-check';

const id = (ns: string, sa: string) => `spiffe://cluster.local/ns/${ns}/sa/${sa}`;
const out = (ns: string, path: string, dst = 'server', to = 'server'): ConnRecordLite => ({ direction: 'outbound', pod: { namespace: ns, name: 'client' }, path, verdict: 'allow', sourceIdentity: id(ns, 'client'), destinationIdentity: id(ns, dst), originalDestination: { workload: { name: to } } });
const inb = (ns: string, pod = 'server'): ConnRecordLite => ({ direction: 'inbound-hbone', pod: { namespace: ns, name: pod }, verdict: 'allow', sourceIdentity: id(ns, 'client') });
const tls = { packets: 10, serverPorts: [15008], tlsRecords: 8, clientHello: true, plaintextHits: 0 };
const exp = (mode: PathExpectation['mode'], placement: PathExpectation['placement'] = 'cross-node'): PathExpectation =>
  ({ mode, placement, namespace: mode, client: 'client', server: placement === 'cross-node' ? 'server' : 'server-local', appPort: 8080, meshPort: mode === 'haproxy' ? 15443 : 15008 });

test('mesh modes: records with both identities and TLS on the wire pass; anything less fails, naming it', () => {
  const cases: [string, PathExpectation, Parameters<typeof checkPath>[1], boolean, RegExp?][] = [
    ['ambient ok', exp('ambient'), { records: [{ proxy: 'daemon node-1', records: [out('ambient', 'hbone')] }, { proxy: 'daemon node-2', records: [inb('ambient')] }], wire: tls }, true],
    ['sidecar ok', exp('sidecar'), { records: [{ proxy: 'sidecar sidecar/client', records: [out('sidecar', 'hbone')] }, { proxy: 'sidecar sidecar/server', records: [inb('sidecar')] }], wire: tls }, true],
    ['wrong destination identity', exp('sidecar'), { records: [{ proxy: 's', records: [out('sidecar', 'hbone', 'other'), inb('sidecar')] }], wire: tls }, false, /outbound HBONE/],
    ['passthrough', exp('ambient'), { records: [{ proxy: 'd', records: [out('ambient', 'passthrough'), inb('ambient')] }], wire: tls }, false, /outbound HBONE|other paths/],
    ['plaintext on the wire', exp('ambient'), { records: [{ proxy: 'd', records: [out('ambient', 'hbone'), inb('ambient')] }], wire: { ...tls, plaintextHits: 1 } }, false, /readable plaintext/],
    ['app port on the wire', exp('sidecar'), { records: [{ proxy: 'd', records: [out('sidecar', 'hbone'), inb('sidecar')] }], wire: { ...tls, serverPorts: [8080, 15008] } }, false, /8080,15008/],
    ['ambient same node: local record, no packet', exp('ambient', 'same-node'), { records: [{ proxy: 'd', records: [out('ambient', 'local', 'server', 'server-local'), out('ambient', 'hbone')] }], wire: { ...tls, packets: 0, clientHello: false, serverPorts: [] } }, true],
    ['ambient cross node beside same-node traffic', exp('ambient'), { records: [{ proxy: 'd', records: [out('ambient', 'hbone'), out('ambient', 'local', 'server', 'server-local'), inb('ambient')] }], wire: tls }, true],
    ['ambient same node, spliced', exp('ambient', 'same-node'), { records: [{ proxy: 'd', records: [out('ambient', 'local-splice', 'server', 'server-local')] }], wire: { ...tls, packets: 0, clientHello: false, serverPorts: [] } }, true],
    ['ambient same node, splice expected but relayed', { ...exp('ambient', 'same-node'), sameNodePath: 'local-splice' }, { records: [{ proxy: 'd', records: [out('ambient', 'local', 'server', 'server-local')] }], wire: { ...tls, packets: 0, clientHello: false, serverPorts: [] } }, false, /local-splice/],
    ['ambient same node with packets', exp('ambient', 'same-node'), { records: [{ proxy: 'd', records: [out('ambient', 'local', 'server', 'server-local')] }], wire: tls }, false, /expected none/],
  ];
  for (const [name, e, ev, ok, re] of cases) {
    const v = checkPath(e, ev);
    assert.equal(v.ok, ok, `${name}: ${JSON.stringify(v)}`);
    if (re) assert.match(v.problems.join('; '), re, name);
  }
});

test('no mesh: untouched (plaintext to the app port, no proxy record)', () => {
  const wire = { packets: 4, serverPorts: [8080], tlsRecords: 0, clientHello: false, plaintextHits: 2 };
  assert.equal(checkPath(exp('plain'), { records: [], wire }).ok, true);
  assert.equal(checkPath(exp('plain'), { records: [{ proxy: 'd', records: [out('plain', 'passthrough')] }], wire }).ok, false);
  assert.equal(checkPath(exp('plain'), { records: [], wire: { ...wire, plaintextHits: 0 } }).ok, false);
});

test('HAProxy: both log lines and TLS on its port', () => {
  const haproxy = { clientLog: 'nm-haproxy out server=10.244.2.3:15443 tls=1\n', serverLog: 'nm-haproxy in client=client.haproxy verify=0 tls=1\n', serverIp: '10.244.2.3' };
  const wire = { ...tls, serverPorts: [15443] };
  assert.equal(checkPath(exp('haproxy'), { haproxy, wire }).ok, true);
  assert.equal(checkPath(exp('haproxy'), { haproxy: { ...haproxy, serverLog: 'nm-haproxy in client= verify=20 tls=1\n' }, wire }).ok, false);
  assert.equal(checkPath(exp('haproxy'), { haproxy, wire: tls }).ok, false);
  assert.equal(checkPath(exp('waypoint'), {}).ok, false);
});

test('ambient + waypoint: caller -> waypoint and waypoint -> server records, the access log, TLS on both hops, nothing direct', () => {
  const ns = 'waypoint';
  const toWp: ConnRecordLite = { ...out(ns, 'hbone', 'waypoint', 'waypoint-waypoint') };
  const fromWp: ConnRecordLite = { ...inb(ns), sourceIdentity: id(ns, 'waypoint') };
  const requests = [{ caller: id(ns, 'client'), waypoint: id(ns, 'waypoint'), endpoint: '10.244.2.5:8080', status: 200 }];
  const none = { packets: 0, serverPorts: [], tlsRecords: 0, clientHello: false, plaintextHits: 0 };
  const good = { records: [{ proxy: 'daemon node-1', records: [toWp] }, { proxy: 'daemon node-2', records: [fromWp] }], wire: none,
    waypoint: { pod: 'waypoint-waypoint', serviceAccount: 'waypoint', serverIp: '10.244.2.5', requests, toWaypoint: tls, fromWaypoint: tls } };
  const v = checkPath(exp('waypoint'), good);
  assert.equal(v.ok, true, JSON.stringify(v));
  assert.equal(v.checks.length, 6);
  const cases: [string, Parameters<typeof checkPath>[1], RegExp][] = [
    ['the caller went straight to the server', { ...good, records: [{ proxy: 'd', records: [toWp, out(ns, 'hbone'), fromWp] }] }, /without the waypoint/],
    ['the server saw the caller, not the waypoint', { ...good, records: [{ proxy: 'd', records: [toWp, inb(ns)] }] }, /waypoint's identity/],
    ['no access-log line for the caller', { ...good, waypoint: { ...good.waypoint, requests: [{ ...requests[0]!, caller: id(ns, 'other') }] } }, /access log/],
    ['plaintext on the waypoint -> server hop', { ...good, waypoint: { ...good.waypoint, fromWaypoint: { ...tls, plaintextHits: 2 } } }, /waypoint -> server/],
    ['packets between client and server', { ...good, wire: tls }, /straight between/],
  ];
  for (const [name, ev, re] of cases) {
    const r = checkPath(exp('waypoint'), ev);
    assert.equal(r.ok, false, name);
    assert.match(r.problems.join('; '), re, name);
  }
});
