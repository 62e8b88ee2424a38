// HPACK (RFC 7541): the header compression of HTTP/2.
//
// The decoder is complete: static and dynamic tables, dynamic table size updates (bounded by
// the SETTINGS_HEADER_TABLE_SIZE we advertise), Huffman-coded strings, integers checked for
// overflow, and a limit on the decoded header list (RFC 9113 SETTINGS_MAX_HEADER_LIST_SIZE).
// Every malformed block is an HpackError, which the connection turns into a
// COMPRESSION_ERROR; it never escapes as anything else.
//
// The encoder is deliberately simple: a field is sent as a static-table index when name and
// value match, otherwise as a literal without indexing (with the name indexed when the static
// table has it). It never adds to the peer's dynamic table, so it needs no state but the
// one size update RFC 7541 section 4.2 requires after the peer lowers its table size.

export class HpackError extends Error {}

/** Appendix A. Index 1 is STATIC[0]. */
export const STATIC_TABLE: readonly (readonly [string, string])[] = [
  [':authority', ''], [':method', 'GET'], [':method', 'POST'], [':path', '/'], [':path', '/index.html'],
  [':scheme', 'http'], [':scheme', 'https'], [':status', '200'], [':status', '204'], [':status', '206'],
  [':status', '304'], [':status', '400'], [':status', '404'], [':status', '500'], ['accept-charset', ''],
  ['accept-encoding', 'gzip, deflate'], ['accept-language', ''], ['accept-ranges', ''], ['accept', ''],
  ['access-control-allow-origin', ''], ['age', ''], ['allow', ''], ['authorization', ''], ['cache-control', ''],
  ['content-disposition', ''], ['content-encoding', ''], ['content-language', ''], ['content-length', ''],
  ['content-location', ''], ['content-range', ''], ['content-type', ''], ['cookie', ''], ['date', ''], ['etag', ''],
  ['expect', ''], ['expires', ''], ['from', ''], ['host', ''], ['if-match', ''], ['if-modified-since', ''],
  ['if-none-match', ''], ['if-range', ''], ['if-unmodified-since', ''], ['last-modified', ''], ['link', ''],
  ['location', ''], ['max-forwards', ''], ['proxy-authenticate', ''], ['proxy-authorization', ''], ['range', ''],
  ['referer', ''], ['refresh', ''], ['retry-after', ''], ['server', ''], ['set-cookie', ''],
  ['strict-transport-security', ''], ['transfer-encoding', ''], ['user-agent', ''], ['vary', ''], ['via', ''],
  ['www-authenticate', ''],
];

/** Appendix B as (code length, code) pairs for symbols 0..256 (256 is EOS). */
const HUFFMAN: readonly number[] = [
  13,0x1ff8, 23,0x7fffd8, 28,0xfffffe2, 28,0xfffffe3, 28,0xfffffe4, 28,0xfffffe5, 28,0xfffffe6, 28,0xfffffe7,
  28,0xfffffe8, 24,0xffffea, 30,0x3ffffffc, 28,0xfffffe9, 28,0xfffffea, 30,0x3ffffffd, 28,0xfffffeb, 28,0xfffffec,
  28,0xfffffed, 28,0xfffffee, 28,0xfffffef, 28,0xffffff0, 28,0xffffff1, 28,0xffffff2, 30,0x3ffffffe, 28,0xffffff3,
  28,0xffffff4, 28,0xffffff5, 28,0xffffff6, 28,0xffffff7, 28,0xffffff8, 28,0xffffff9, 28,0xffffffa, 28,0xffffffb,
  6,0x14, 10,0x3f8, 10,0x3f9, 12,0xffa, 13,0x1ff9, 6,0x15, 8,0xf8, 11,0x7fa,
  10,0x3fa, 10,0x3fb, 8,0xf9, 11,0x7fb, 8,0xfa, 6,0x16, 6,0x17, 6,0x18,
  5,0x0, 5,0x1, 5,0x2, 6,0x19, 6,0x1a, 6,0x1b, 6,0x1c, 6,0x1d,
  6,0x1e, 6,0x1f, 7,0x5c, 8,0xfb, 15,0x7ffc, 6,0x20, 12,0xffb, 10,0x3fc,
  13,0x1ffa, 6,0x21, 7,0x5d, 7,0x5e, 7,0x5f, 7,0x60, 7,0x61, 7,0x62,
  7,0x63, 7,0x64, 7,0x65, 7,0x66, 7,0x67, 7,0x68, 7,0x69, 7,0x6a,
  7,0x6b, 7,0x6c, 7,0x6d, 7,0x6e, 7,0x6f, 7,0x70, 7,0x71, 7,0x72,
  8,0xfc, 7,0x73, 8,0xfd, 13,0x1ffb, 19,0x7fff0, 13,0x1ffc, 14,0x3ffc, 6,0x22,
  15,0x7ffd, 5,0x3, 6,0x23, 5,0x4, 6,0x24, 5,0x5, 6,0x25, 6,0x26,
  6,0x27, 5,0x6, 7,0x74, 7,0x75, 6,0x28, 6,0x29, 6,0x2a, 5,0x7,
  6,0x2b, 7,0x76, 6,0x2c, 5,0x8, 5,0x9, 6,0x2d, 7,0x77, 7,0x78,
  7,0x79, 7,0x7a, 7,0x7b, 15,0x7ffe, 11,0x7fc, 14,0x3ffd, 13,0x1ffd, 28,0xffffffc,
  20,0xfffe6, 22,0x3fffd2, 20,0xfffe7, 20,0xfffe8, 22,0x3fffd3, 22,0x3fffd4, 22,0x3fffd5, 23,0x7fffd9,
  22,0x3fffd6, 23,0x7fffda, 23,0x7fffdb, 23,0x7fffdc, 23,0x7fffdd, 23,0x7fffde, 24,0xffffeb, 23,0x7fffdf,
  24,0xffffec, 24,0xffffed, 22,0x3fffd7, 23,0x7fffe0, 24,0xffffee, 23,0x7fffe1, 23,0x7fffe2, 23,0x7fffe3,
  23,0x7fffe4, 21,0x1fffdc, 22,0x3fffd8, 23,0x7fffe5, 22,0x3fffd9, 23,0x7fffe6, 23,0x7fffe7, 24,0xffffef,
  22,0x3fffda, 21,0x1fffdd, 20,0xfffe9, 22,0x3fffdb, 22,0x3fffdc, 23,0x7fffe8, 23,0x7fffe9, 21,0x1fffde,
  23,0x7fffea, 22,0x3fffdd, 22,0x3fffde, 24,0xfffff0, 21,0x1fffdf, 22,0x3fffdf, 23,0x7fffeb, 23,0x7fffec,
  21,0x1fffe0, 21,0x1fffe1, 22,0x3fffe0, 21,0x1fffe2, 23,0x7fffed, 22,0x3fffe1, 23,0x7fffee, 23,0x7fffef,
  20,0xfffea, 22,0x3fffe2, 22,0x3fffe3, 22,0x3fffe4, 23,0x7ffff0, 22,0x3fffe5, 22,0x3fffe6, 23,0x7ffff1,
  26,0x3ffffe0, 26,0x3ffffe1, 20,0xfffeb, 19,0x7fff1, 22,0x3fffe7, 23,0x7ffff2, 22,0x3fffe8, 25,0x1ffffec,
  26,0x3ffffe2, 26,0x3ffffe3, 26,0x3ffffe4, 27,0x7ffffde, 27,0x7ffffdf, 26,0x3ffffe5, 24,0xfffff1, 25,0x1ffffed,
  19,0x7fff2, 21,0x1fffe3, 26,0x3ffffe6, 27,0x7ffffe0, 27,0x7ffffe1, 26,0x3ffffe7, 27,0x7ffffe2, 24,0xfffff2,
  21,0x1fffe4, 21,0x1fffe5, 26,0x3ffffe8, 26,0x3ffffe9, 28,0xffffffd, 27,0x7ffffe3, 27,0x7ffffe4, 27,0x7ffffe5,
  20,0xfffec, 24,0xfffff3, 20,0xfffed, 21,0x1fffe6, 22,0x3fffe9, 21,0x1fffe7, 21,0x1fffe8, 23,0x7ffff3,
  22,0x3fffea, 22,0x3fffeb, 25,0x1ffffee, 25,0x1ffffef, 24,0xfffff4, 24,0xfffff5, 26,0x3ffffea, 23,0x7ffff4,
  26,0x3ffffeb, 27,0x7ffffe6, 26,0x3ffffec, 26,0x3ffffed, 27,0x7ffffe7, 27,0x7ffffe8, 27,0x7ffffe9, 27,0x7ffffea,
  27,0x7ffffeb, 28,0xffffffe, 27,0x7ffffec, 27,0x7ffffed, 27,0x7ffffee, 27,0x7ffffef, 27,0x7fffff0, 26,0x3ffffee,
  30,0x3fffffff,
];

/** Binary decoding tree: node n has children CHILD[2n] (bit 0) and CHILD[2n+1] (bit 1);
 * a value >= 0x10000 is a leaf holding symbol (value - 0x10000); 0 means no child yet. */
const CHILD = new Int32Array(2 * 600);
(() => {
  let nodes = 1;
  for (let sym = 0; sym <= 256; sym++) {
    const len = HUFFMAN[2 * sym], code = HUFFMAN[2 * sym + 1];
    let n = 0;
    for (let i = len - 1; i > 0; i--) {
      const slot = 2 * n + ((code >>> i) & 1);
      if (CHILD[slot] === 0) CHILD[slot] = nodes++;
      n = CHILD[slot];
    }
    CHILD[2 * n + (code & 1)] = 0x10000 + sym;
  }
})();

const LEAF = 0x10000;
const EOS = 256;

function huffmanDecode(src: Buffer, start: number, end: number, maxLength: number): string {
  const out = Buffer.allocUnsafe(Math.min(maxLength, ((end - start) * 8) / 5 + 1) | 0);
  let o = 0;
  let n = 0;
  // Bits read since the last symbol, and whether they were all ones: what is left at the end
  // must be a prefix of EOS (all ones) shorter than 8 bits (section 5.2).
  let pending = 0;
  let allOnes = true;
  for (let i = start; i < end; i++) {
    const byte = src[i];
    for (let b = 7; b >= 0; b--) {
      const bit = (byte >> b) & 1;
      const next = CHILD[2 * n + bit];
      pending++;
      if (bit === 0) allOnes = false;
      if (next >= LEAF) {
        const sym = next - LEAF;
        if (sym === EOS) throw new HpackError('Huffman string contains EOS');
        out[o++] = sym;
        n = 0;
        pending = 0;
        allOnes = true;
      } else if (next === 0) {
        throw new HpackError('invalid Huffman code');
      } else {
        n = next;
      }
    }
  }
  if (pending > 7 || !allOnes) throw new HpackError('invalid Huffman padding');
  return out.toString('latin1', 0, o);
}

export interface HpackDecoderOptions {
  /** The SETTINGS_HEADER_TABLE_SIZE we advertise (the most the peer may use). */
  maxTableSize?: number;
  /** RFC 9113 SETTINGS_MAX_HEADER_LIST_SIZE: names + values + 32 per field. */
  maxHeaderListSize?: number;
}

/** A decoded header list: [name, value, name, value, ...], latin1 strings. */
export type HeaderList = string[];

export interface DecodeResult {
  headers: HeaderList;
  /** The list exceeded maxHeaderListSize (decoding went on to keep the table in sync). */
  tooLarge: boolean;
}

export class HpackDecoder {
  private readonly maxTableSize: number;
  private readonly maxHeaderListSize: number;
  /** Current limit, as set by the peer's size updates (<= maxTableSize). */
  private tableLimit: number;
  private tableSize = 0;
  /** Dynamic table, newest first: names and values in a ring would be faster; headers are few. */
  private readonly dynamic: [string, string][] = [];

  constructor(opts: HpackDecoderOptions = {}) {
    this.maxTableSize = opts.maxTableSize ?? 4096;
    this.maxHeaderListSize = opts.maxHeaderListSize ?? 65_536;
    this.tableLimit = this.maxTableSize;
  }

  /** Decodes one complete header block. Throws HpackError (only) when it is malformed. */
  decode(block: Buffer): DecodeResult {
    const headers: HeaderList = [];
    let listSize = 0;
    let tooLarge = false;
    let pos = 0;
    let fieldSeen = false;
    const end = block.length;
    while (pos < end) {
      const b = block[pos];
      let name: string, value: string;
      if (b & 0x80) { // 6.1 indexed field
        const [index, p] = readInt(block, pos, 7);
        pos = p;
        [name, value] = this.entry(index);
      } else if ((b & 0xe0) === 0x20) { // 6.3 dynamic table size update
        if (fieldSeen) throw new HpackError('dynamic table size update after a header field');
        const [size, p] = readInt(block, pos, 5);
        pos = p;
        if (size > this.maxTableSize) throw new HpackError(`dynamic table size update to ${size} exceeds our SETTINGS_HEADER_TABLE_SIZE ${this.maxTableSize}`);
        this.tableLimit = size;
        this.evict(0);
        continue;
      } else {
        // 6.2.1 with incremental indexing (01), 6.2.2 without (0000), 6.2.3 never indexed (0001)
        const incremental = (b & 0xc0) === 0x40;
        const [index, p] = readInt(block, pos, incremental ? 6 : 4);
        pos = p;
        let n: string | null, v: string | null;
        if (index === 0) {
          const r = this.readString(block, pos);
          n = r[0]; pos = r[1];
        } else {
          n = this.entry(index)[0];
        }
        const r = this.readString(block, pos);
        v = r[0]; pos = r[1];
        if (n === null || v === null) {
          // Too long to keep: the list is over its limit, and as an entry it could not fit.
          if (incremental) { this.dynamic.length = 0; this.tableSize = 0; } // an entry larger than the table empties it (4.4)
          tooLarge = true;
          fieldSeen = true;
          continue;
        }
        name = n; value = v;
        if (incremental) this.insert(name, value);
      }
      fieldSeen = true;
      listSize += name.length + value.length + 32;
      if (listSize > this.maxHeaderListSize) tooLarge = true;
      if (!tooLarge) headers.push(name, value);
    }
    return { headers: tooLarge ? [] : headers, tooLarge };
  }

  private entry(index: number): readonly [string, string] {
    if (index === 0) throw new HpackError('header index 0');
    if (index <= STATIC_TABLE.length) return STATIC_TABLE[index - 1];
    const e = this.dynamic[index - STATIC_TABLE.length - 1];
    if (!e) throw new HpackError(`header index ${index} is beyond the tables`);
    return e;
  }

  private insert(name: string, value: string): void {
    const size = name.length + value.length + 32;
    if (size > this.tableLimit) { this.dynamic.length = 0; this.tableSize = 0; return; }
    this.evict(size);
    this.dynamic.unshift([name, value]);
    this.tableSize += size;
  }

  /** Evicts oldest entries until `room` more bytes fit. */
  private evict(room: number): void {
    while (this.tableSize + room > this.tableLimit && this.dynamic.length > 0) {
      const [n, v] = this.dynamic.pop()!;
      this.tableSize -= n.length + v.length + 32;
    }
  }

  /** A string, or null when it is too long to keep (skipped: it could not fit in the table or
   * the header list anyway, so skipping it keeps the table in sync). */
  private readString(block: Buffer, pos: number): [string | null, number] {
    if (pos >= block.length) throw new HpackError('header block ends inside a field');
    const huffman = (block[pos] & 0x80) !== 0;
    const [len, p] = readInt(block, pos, 7);
    const end = p + len;
    if (end > block.length) throw new HpackError('string length runs past the header block');
    if (len > this.maxHeaderListSize && len > this.tableLimit) return [null, end];
    const s = huffman ? huffmanDecode(block, p, end, ((len * 8) / 5 + 1) | 0) : block.toString('latin1', p, end);
    return [s, end];
  }
}

/** 5.1: an integer with an N-bit prefix. Values above 2^28 are refused (no header needs one,
 * and it keeps the arithmetic exact). */
function readInt(buf: Buffer, pos: number, prefixBits: number): [number, number] {
  const max = (1 << prefixBits) - 1;
  let v = buf[pos++] & max;
  if (v < max) return [v, pos];
  let m = 0;
  for (;;) {
    if (pos >= buf.length) throw new HpackError('header block ends inside an integer');
    const b = buf[pos++];
    v += (b & 0x7f) * 2 ** m;
    m += 7;
    if (v > 0x1000_0000) throw new HpackError('integer too large');
    if ((b & 0x80) === 0) return [v, pos];
  }
}

function writeInt(out: number[], first: number, prefixBits: number, v: number): void {
  const max = (1 << prefixBits) - 1;
  if (v < max) { out.push(first | v); return; }
  out.push(first | max);
  v -= max;
  while (v >= 128) { out.push((v & 0x7f) | 0x80); v = Math.floor(v / 128); }
  out.push(v);
}

const STATIC_NAME = new Map<string, number>();
const STATIC_PAIR = new Map<string, number>();
STATIC_TABLE.forEach(([n, v], i) => {
  if (!STATIC_NAME.has(n)) STATIC_NAME.set(n, i + 1);
  if (v !== '') STATIC_PAIR.set(`${n}\0${v}`, i + 1);
});

export class HpackEncoder {
  private sizeUpdatePending = false;

  /** The peer's SETTINGS_HEADER_TABLE_SIZE changed: we use none of it, so say 0 once. */
  peerTableSizeChanged(): void { this.sizeUpdatePending = true; }

  /** Encodes [name, value, name, value, ...] (names lowercase, values latin1). */
  encode(list: readonly string[]): Buffer {
    const out: number[] = [];
    if (this.sizeUpdatePending) { out.push(0x20); this.sizeUpdatePending = false; }
    let strings: { at: number; s: string }[] | undefined;
    for (let i = 0; i < list.length; i += 2) {
      const name = list[i], value = list[i + 1];
      const pair = STATIC_PAIR.get(`${name}\0${value}`);
      if (pair !== undefined) { writeInt(out, 0x80, 7, pair); continue; }
      const ni = STATIC_NAME.get(name);
      if (ni !== undefined) {
        writeInt(out, 0x00, 4, ni);
      } else {
        out.push(0x00);
        writeInt(out, 0x00, 7, Buffer.byteLength(name, 'latin1'));
        (strings ??= []).push({ at: out.length, s: name });
      }
      writeInt(out, 0x00, 7, Buffer.byteLength(value, 'latin1'));
      (strings ??= []).push({ at: out.length, s: value });
    }
    if (!strings) return Buffer.from(out);
    // Splice the string bytes in where their lengths end.
    let total = out.length;
    for (const x of strings) total += x.s.length;
    const buf = Buffer.allocUnsafe(total);
    let o = 0, from = 0;
    for (const x of strings) {
      for (let j = from; j < x.at; j++) buf[o++] = out[j];
      o += buf.write(x.s, o, 'latin1');
      from = x.at;
    }
    for (let j = from; j < out.length; j++) buf[o++] = out[j];
    return buf;
  }
}
