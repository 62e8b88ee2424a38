import { test } from 'node:test';
import assert from 'node:assert/strict';
import { H2_PREFACE, SniffResult, declaredProtocol, sniffProtocol } from './protocol-sniff';

test('protocol sniffing: h2 preface, HTTP/1 request line, anything else is TCP', () => {
  const table: [Buffer, SniffResult][] = [
    [H2_PREFACE, 'h2'],
    [Buffer.concat([H2_PREFACE, Buffer.from([0, 0, 0])]), 'h2'],
    [H2_PREFACE.subarray(0, 5), 'need-more'],
    [Buffer.from('GET / HTTP/1.1\r\nHost: a\r\n\r\n'), 'http1'],
    [Buffer.from('POST /api/v1?x=1 HTTP/1.0\r\n'), 'http1'],
    [Buffer.from('GE'), 'need-more'],
    [Buffer.from('GET /long/path/still/coming'), 'need-more'],
    [Buffer.from('GET / HTTP/3.0\r\n'), 'tcp'],
    [Buffer.from([0x16, 0x03, 0x01, 0x02]), 'tcp'], // a TLS ClientHello
    [Buffer.from('SSH-2.0-OpenSSH\r\n'), 'tcp'],
    [Buffer.from('hello world\n'), 'tcp'],
  ];
  for (const [head, want] of table) assert.equal(sniffProtocol(head), want, JSON.stringify(head.toString('latin1')));
});

test('declared protocols: appProtocol, then the port name prefix', () => {
  assert.equal(declaredProtocol({ appProtocol: 'kubernetes.io/h2c' }), 'http');
  assert.equal(declaredProtocol({ name: 'grpc-api' }), 'http');
  assert.equal(declaredProtocol({ name: 'http' }), 'http');
  assert.equal(declaredProtocol({ name: 'tcp-db' }), 'tcp');
  assert.equal(declaredProtocol({ name: 'web', appProtocol: 'tcp' }), 'tcp');
  assert.equal(declaredProtocol({ name: 'web' }), undefined);
  assert.equal(declaredProtocol({}), undefined);
});
