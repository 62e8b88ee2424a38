import { strict as assert } from 'node:assert';
import type * as os from 'node:os';
import { describe, it } from 'node:test';
import { SOCKET_FLAGS, listenerFlags, nodeAddresses } from './socket-factory';

const iface = (address: string, family: 'IPv4' | 'IPv6', internal = false) =>
  ({ address, family, internal, netmask: '', mac: '', cidr: null, ...(family === 'IPv6' ? { scopeid: 0 } : {}) }) as os.NetworkInterfaceInfo;

describe('socket factory', () => {
  it('every listener is SO_REUSEPORT (restart beside the old daemon); IPv6 ones are IPv6-only', () => {
    assert.equal(listenerFlags(4), SOCKET_FLAGS.reuseAddr | SOCKET_FLAGS.reusePort);
    assert.equal(listenerFlags(6), SOCKET_FLAGS.reuseAddr | SOCKET_FLAGS.reusePort | SOCKET_FLAGS.v6Only);
  });
  it('probe sources default to the node\'s own IPv4 addresses only', () => {
    const got = nodeAddresses({
      lo: [iface('127.0.0.1', 'IPv4', true), iface('::1', 'IPv6', true)],
      eth0: [iface('172.30.0.12', 'IPv4'), iface('fd00:172:30::c', 'IPv6'), iface('fe80::1', 'IPv6')],
      eth1: [iface('10.0.0.5', 'IPv4'), iface('172.30.0.12', 'IPv4')],
    });
    assert.deepEqual(got, ['172.30.0.12', '10.0.0.5']);
  });
});
