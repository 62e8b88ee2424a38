// HPACK against the examples of RFC 7541 Appendix C, plus what a hostile encoder may send.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { HpackDecoder, HpackEncoder, HpackError } from './hpack';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const pairs = (l: string[]) => { const o: [string, string][] = []; for (let i = 0; i < l.length; i += 2) o.push([l[i], l[i + 1]]); return o; };

test('C.2: literal fields and an indexed one', () => {
  const d = new HpackDecoder();
  assert.deepEqual(pairs(d.decode(hex('400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572')).headers), [['custom-key', 'custom-header']]);
  assert.deepEqual(pairs(new HpackDecoder().decode(hex('040c 2f73 616d 706c 652f 7061 7468')).headers), [[':path', '/sample/path']]);
  assert.deepEqual(pairs(new HpackDecoder().decode(hex('1008 7061 7373 776f 7264 0673 6563 7265 74')).headers), [['password', 'secret']]);
  assert.deepEqual(pairs(new HpackDecoder().decode(hex('82')).headers), [[':method', 'GET']]);
});

const requests = [
  [[':method', 'GET'], [':scheme', 'http'], [':path', '/'], [':authority', 'www.example.com']],
  [[':method', 'GET'], [':scheme', 'http'], [':path', '/'], [':authority', 'www.example.com'], ['cache-control', 'no-cache']],
  [[':method', 'GET'], [':scheme', 'https'], [':path', '/index.html'], [':authority', 'www.example.com'], ['custom-key', 'custom-value']],
];

test('C.3: requests without Huffman share a dynamic table', () => {
  const d = new HpackDecoder();
  const blocks = [
    '8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d',
    '8286 84be 5808 6e6f 2d63 6163 6865',
    '8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65',
  ];
  blocks.forEach((b, i) => assert.deepEqual(pairs(d.decode(hex(b)).headers), requests[i]));
});

test('C.4: the same requests with Huffman', () => {
  const d = new HpackDecoder();
  const blocks = [
    '8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff',
    '8286 84be 5886 a8eb 1064 9cbf',
    '8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf',
  ];
  blocks.forEach((b, i) => assert.deepEqual(pairs(d.decode(hex(b)).headers), requests[i]));
});

const responses = [
  [[':status', '302'], ['cache-control', 'private'], ['date', 'Mon, 21 Oct 2013 20:13:21 GMT'], ['location', 'https://www.example.com']],
  [[':status', '307'], ['cache-control', 'private'], ['date', 'Mon, 21 Oct 2013 20:13:21 GMT'], ['location', 'https://www.example.com']],
  [[':status', '200'], ['cache-control', 'private'], ['date', 'Mon, 21 Oct 2013 20:13:22 GMT'], ['location', 'https://www.example.com'],
    ['content-encoding', 'gzip'], ['set-cookie', 'foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1']],
];

test('C.5: responses with a 256-byte table evict entries', () => {
  const d = new HpackDecoder({ maxTableSize: 256 });
  const blocks = [
    '4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 6c65 2e63 6f6d',
    '4803 3330 37c1 c0bf',
    '88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d 54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049 5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e 3d31',
  ];
  blocks.forEach((b, i) => assert.deepEqual(pairs(d.decode(hex(b)).headers), responses[i]));
});

test('C.6: responses with Huffman and eviction', () => {
  const d = new HpackDecoder({ maxTableSize: 256 });
  const blocks = [
    '4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3',
    '4883 640e ffc1 c0bf',
    '88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab 77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07',
  ];
  blocks.forEach((b, i) => assert.deepEqual(pairs(d.decode(hex(b)).headers), responses[i]));
});

test('the encoder round-trips through the decoder, with the size update after a peer change', () => {
  const e = new HpackEncoder();
  const d = new HpackDecoder();
  const list = [':method', 'CONNECT', ':authority', '10.0.0.1:8080', ':status', '200', 'forwarded', 'for="10.0.0.2"', 'x-long', 'v'.repeat(300)];
  assert.deepEqual(d.decode(e.encode(list)).headers, list);
  e.peerTableSizeChanged();
  const b = e.encode([':status', '200']);
  assert.deepEqual([...b], [0x20, 0x88]);
  assert.deepEqual(d.decode(b).headers, [':status', '200']);
});

test('malformed blocks are HpackErrors', () => {
  const bad: [string, string][] = [
    ['80', 'index 0'],
    ['be', 'index beyond the tables'],
    ['ff ff ff ff ff ff 0f', 'integer overflow'],
    ['ff', 'integer cut short'],
    ['41 05 61', 'string runs past the block'],
    ['41 81 ff', 'Huffman padding too long / EOS prefix'],
    ['41 84 ff ff ff ff', 'EOS in a Huffman string'],
    ['41 81 00', 'padding not all ones'],
    ['82 20', 'size update after a field'],
    ['3f e2 1f', 'size update above our setting (4097)'],
  ];
  for (const [b, what] of bad) {
    assert.throws(() => new HpackDecoder().decode(hex(b)), HpackError, what);
  }
});

test('a header list over the limit is reported, and the table stays in sync', () => {
  const d = new HpackDecoder({ maxHeaderListSize: 100 });
  const e = new HpackEncoder();
  const big = e.encode(['x-a', 'a'.repeat(60), 'x-b', 'b'.repeat(60)]);
  const r = d.decode(big);
  assert.equal(r.tooLarge, true);
  assert.deepEqual(d.decode(hex('82')).headers, [':method', 'GET']);
});

test('random bytes never throw anything but HpackError', () => {
  let seed = 7;
  const rnd = () => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed; };
  for (let i = 0; i < 20_000; i++) {
    const b = Buffer.alloc(rnd() % 40);
    for (let j = 0; j < b.length; j++) b[j] = rnd() & 0xff;
    const d = new HpackDecoder({ maxTableSize: 256, maxHeaderListSize: 1024 });
    try { d.decode(b); } catch (e) { assert.ok(e instanceof HpackError, String(e)); }
  }
});
