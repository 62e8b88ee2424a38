// HAProxy sidecar configuration (pure): what each side enforces, and refusals of bad input.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { certExtensions, haproxyConfig, haproxyName, maxconnForFdLimit } from './haproxy';

const base = { pod: 'haproxy_client', certFile: '/s/pod.pem', caFile: '/s/ca.crt', threads: 1, maxconn: 9000 };

test('client side: a local port per peer, mTLS to the peer with its name verified', () => {
  const cfg = haproxyConfig({ ...base, outbound: [{ localPort: 15001, peer: { ip: '10.244.2.3', port: 15443, name: haproxyName('haproxy', 'server') } }] });
  assert.match(cfg, /^  bind 127\.0\.0\.1:15001$/m);
  assert.match(cfg, /^  server peer 10\.244\.2\.3:15443 ssl crt \/s\/pod\.pem ca-file \/s\/ca\.crt verify required verifyhost server\.haproxy$/m);
  assert.match(cfg, /^  nbthread 1$/m);
  assert.match(cfg, /^  maxconn 9000$/m);
  assert.match(cfg, /ssl-min-ver TLSv1\.3/);
  assert.ok(!cfg.includes('frontend inbound_mtls'));
});

test('server side: client certificate required and its name allowed, then the app on loopback', () => {
  const cfg = haproxyConfig({ ...base, pod: 'haproxy_server', outbound: [], inbound: { ip: '10.244.2.3', port: 15443, appPort: 8080, allowClients: ['client.haproxy'] } });
  assert.match(cfg, /^  bind 10\.244\.2\.3:15443 ssl crt \/s\/pod\.pem ca-file \/s\/ca\.crt verify required$/m);
  assert.match(cfg, /^  acl allowed_client ssl_c_s_dn\(CN\) -m str client\.haproxy$/m);
  assert.match(cfg, /^  tcp-request content reject unless \{ ssl_c_verify 0 \} allowed_client$/m);
  assert.match(cfg, /^  server app 127\.0\.0\.1:8080$/m);
  assert.match(cfg, /nm-haproxy in client=%\[ssl_c_s_dn\(CN\)\] verify=%\[ssl_c_verify\] tls=%\[ssl_fc\]/);
});

test('bad input is refused, naming the field, never written into the config', () => {
  const cases: [string, Parameters<typeof haproxyConfig>[0], RegExp][] = [
    ['relative cert', { ...base, certFile: 'pod.pem', outbound: [] }, /file "pod.pem"/],
    ['name with a space', { ...base, outbound: [{ localPort: 1, peer: { ip: '10.0.0.1', port: 2, name: 'a b' } }] }, /name "a b"/],
    ['port 0', { ...base, outbound: [{ localPort: 0, peer: { ip: '10.0.0.1', port: 2, name: 'a' } }] }, /port 0/],
    ['not an IPv4', { ...base, outbound: [{ localPort: 1, peer: { ip: 'evil;', port: 2, name: 'a' } }] }, /IPv4 address "evil;"/],
    ['no allowed client', { ...base, outbound: [], inbound: { ip: '10.0.0.1', port: 15443, appPort: 8080, allowClients: [] } }, /allowClients/],
    ['threads', { ...base, threads: 0, outbound: [] }, /threads 0/],
  ];
  for (const [name, input, re] of cases) assert.throws(() => haproxyConfig(input), re, name);
});

test('certificate extensions: SPIFFE URI and DNS name, leaf for both TLS roles', () => {
  const ext = certExtensions('cluster.local', 'haproxy', 'client');
  assert.match(ext, /subjectAltName=URI:spiffe:\/\/cluster\.local\/ns\/haproxy\/sa\/client,DNS:client\.haproxy/);
  assert.match(ext, /CA:FALSE/);
  assert.match(ext, /serverAuth,clientAuth/);
});

test('maxconnForFdLimit: two descriptors per connection under the hard limit', () => {
  assert.equal(maxconnForFdLimit('Max open files            20000                20000                files     \n'), 9900);
  assert.equal(maxconnForFdLimit('Max open files            1024                 unlimited            files     \n'), 524188);
  assert.equal(maxconnForFdLimit('nothing', 1024), 412);
});
