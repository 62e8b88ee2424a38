import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough, type Readable } from 'node:stream';
import { RETRY_BUFFER_LIMIT, RequestBody } from './request-body';

const drain = (r: Readable): Promise<Buffer> => new Promise((resolve, reject) => {
  const chunks: Buffer[] = [];
  r.on('data', (c: Buffer) => chunks.push(c));
  r.on('end', () => resolve(Buffer.concat(chunks)));
  r.on('error', reject);
});

test('a body that fits the retry buffer is sent whole by every attempt, and to the mirror', async () => {
  const src = new PassThrough();
  const body = RequestBody.stream(src, { limit: 16 });
  const first = body.open()!;
  const got = drain(first);
  src.write('hello ');
  src.end('world');
  assert.equal((await got).toString(), 'hello world');
  assert.equal(body.replayable, true);
  assert.equal((await drain(body.open()!)).toString(), 'hello world', 'a retry replays it from the start');
  assert.equal((await body.whole())?.toString(), 'hello world');
});

test('a retry opened mid-body replays what was kept, then goes on with the rest', async () => {
  const src = new PassThrough();
  const body = RequestBody.stream(src, { limit: 64 });
  const first = body.open()!;
  first.on('data', () => undefined);
  src.write('part one, ');
  await new Promise((r) => setImmediate(r));
  const second = body.open()!;
  assert.equal(first.destroyed, true, 'the failed attempt stops receiving');
  const got = drain(second);
  src.end('part two');
  assert.equal((await got).toString(), 'part one, part two');
});

test('a body over the limit streams through once, keeps at most the limit, and is neither replayed nor mirrored', async () => {
  const src = new PassThrough();
  const body = RequestBody.stream(src);
  const whole = body.whole();
  const first = body.open()!;
  let seen = 0;
  let maxKept = 0;
  first.on('data', (c: Buffer) => { seen += c.length; maxKept = Math.max(maxKept, body.buffered); });
  const ended = new Promise((r) => first.on('end', r));
  const chunk = Buffer.alloc(1024 * 1024, 7);
  for (let i = 0; i < 32; i++) {
    if (!src.write(chunk)) await new Promise((r) => src.once('drain', r));
  }
  src.end();
  await ended;
  assert.equal(seen, 32 * 1024 * 1024);
  assert.ok(maxKept <= RETRY_BUFFER_LIMIT, `kept ${maxKept} bytes`);
  assert.equal(body.replayable, false);
  assert.equal(body.open(), undefined, 'no second attempt');
  assert.equal(await whole, undefined, 'the mirror gets nothing, not a part');
});

test('the caller failing mid-body fails the attempt and ends replays', async () => {
  const src = new PassThrough();
  const body = RequestBody.stream(src, { limit: 1024 });
  const first = body.open()!;
  const got = drain(first);
  src.write('abc');
  src.destroy(new Error('gone'));
  await assert.rejects(got, /gone/);
  assert.equal(body.replayable, false);
  assert.equal(body.open(), undefined);
  assert.equal(await body.whole(), undefined);
});

test('a request that declared no body sends none and needs no reading', async () => {
  const body = RequestBody.stream(new PassThrough(), { empty: true });
  assert.equal(body.empty, true);
  assert.equal((await drain(body.open()!)).length, 0);
  assert.equal((await body.whole())?.length, 0);
});

test('a content-length over the limit is never kept: one attempt, no mirror', async () => {
  const src = new PassThrough();
  const body = RequestBody.stream(src, { limit: 4, length: 10 });
  assert.equal(await body.whole(), undefined);
  body.open()!.destroy(); // an attempt that failed to connect took nothing: another may go
  assert.equal(body.replayable, true);
  const got = drain(body.open()!);
  src.end('0123456789');
  assert.equal((await got).toString(), '0123456789');
  assert.equal(body.buffered, 0);
  assert.equal(body.replayable, false);
  assert.equal(body.open(), undefined);
});
