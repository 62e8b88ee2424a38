// The codec against itself (round trips, known byte layouts) and against the compiled
// objects' BTF (alignchecker-style): a change to nodemesh.h without the matching change to
// bpf-codec.ts fails here. Needs no privileges; the BTF part needs `make bpf` output and
// bpftool (both part of `make test`).
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { repoRoot } from '../../native/index';
import * as codec from './bpf-codec';

describe('bpf-codec: addresses', () => {
  const cases: [string, 4 | 6, string, string][] = [
    // input, family, hex of the 16 bytes, canonical output
    ['10.1.2.3', 4, '0a010203' + '0'.repeat(24), '10.1.2.3'],
    ['127.0.0.1', 4, '7f000001' + '0'.repeat(24), '127.0.0.1'],
    ['::1', 6, '0'.repeat(30) + '01', '::1'],
    ['::', 6, '0'.repeat(32), '::'],
    ['fd00::a:1', 6, 'fd00' + '0'.repeat(20) + '000a0001', 'fd00::a:1'],
    ['FD00:0:0:0:0:0:0:5', 6, 'fd00' + '0'.repeat(24) + '0005', 'fd00::5'],
    ['2001:db8:0:0:1:0:0:1', 6, '20010db8000000000001000000000001', '2001:db8::1:0:0:1'],
    ['1:2:3:4:5:6:7:8', 6, '00010002000300040005000600070008', '1:2:3:4:5:6:7:8'],
    ['::ffff:10.0.0.7', 6, '0'.repeat(20) + 'ffff0a000007', '::ffff:10.0.0.7'],
    ['64:ff9b::192.0.2.33', 6, '0064ff9b' + '0'.repeat(16) + 'c0000221', '64:ff9b::c000:221'],
    ['fe80::1%eth0', 6, 'fe80' + '0'.repeat(26) + '01', 'fe80::1'],
  ];
  for (const [input, family, hex, canonical] of cases) {
    it(`encodes and decodes ${input}`, () => {
      const ip = codec.encodeIp(input);
      assert.equal(ip.family, family);
      assert.equal(ip.bytes.toString('hex'), hex);
      assert.equal(codec.decodeIp(ip.bytes, family), canonical);
    });
  }

  it('rejects what is not an address', () => {
    assert.throws(() => codec.encodeIp('10.0.0'), TypeError);
    assert.throws(() => codec.encodeIp('example.com'), TypeError);
    assert.throws(() => codec.decodeIp(Buffer.alloc(16), 5), RangeError);
  });
});

describe('bpf-codec: keys and values', () => {
  it('nm_conn_key: cookie, host-order port, family; padding zero', () => {
    const k = codec.encodeConnKey({ netnsCookie: 0x0102030405060708n, port: 40000, family: 4 });
    assert.equal(k.length, codec.LAYOUTS.nm_conn_key.size);
    assert.equal(k.toString('hex'), '0807060504030201' + '409c' + '04' + '0000000000');
    assert.deepEqual(codec.decodeConnKey(k), { netnsCookie: 0x0102030405060708n, port: 40000, family: 4 });
    assert.throws(() => codec.encodeConnKey({ netnsCookie: -1n, port: 1, family: 4 }), RangeError);
    assert.throws(() => codec.encodeConnKey({ netnsCookie: 1n, port: 70000, family: 4 }), RangeError);
  });

  it('nm_conn_key: two pods, same port, same family => distinct keys', () => {
    const a = codec.encodeConnKey({ netnsCookie: 4097n, port: 33000, family: 4 });
    const b = codec.encodeConnKey({ netnsCookie: 4098n, port: 33000, family: 4 });
    const c = codec.encodeConnKey({ netnsCookie: 4097n, port: 33000, family: 6 });
    assert.notDeepEqual(a, b);
    assert.notDeepEqual(a, c);
  });

  it('nm_orig_dst round trips for v4, v6 and v4-mapped', () => {
    const all: codec.OrigDst[] = [
      { family: 4, address: '10.96.0.10', port: 53, v4Mapped: false },
      { family: 6, address: 'fd00:10:96::a', port: 443, v4Mapped: false },
      { family: 4, address: '192.168.1.1', port: 8080, v4Mapped: true },
    ];
    for (const d of all) {
      const b = codec.encodeOrigDst(d);
      assert.equal(b.length, codec.LAYOUTS.nm_orig_dst.size);
      assert.deepEqual(codec.decodeOrigDst(b), d);
    }
    const b = codec.encodeOrigDst(all[0]);
    assert.equal(b.subarray(0, 4).toString('hex'), '0a60000a', 'address bytes are network order');
    assert.equal(b.readUInt16LE(16), 53, 'port is host order');
    assert.throws(() => codec.encodeOrigDst({ family: 6, address: '10.0.0.1', port: 1, v4Mapped: false }), TypeError);
  });

  it('ip keys, port keys, netns info, pod ip info', () => {
    assert.equal(codec.decodeIpKey(codec.encodeIpKey('10.244.1.5')), '10.244.1.5');
    assert.equal(codec.decodeIpKey(codec.encodeIpKey('fd00::5')), 'fd00::5');
    assert.notDeepEqual(codec.encodeIpKey('10.0.0.1'), codec.encodeIpKey('::ffff:10.0.0.1'));
    assert.deepEqual(codec.decodeIpPortKey(codec.encodeIpPortKey('10.0.0.9', 9090)), { address: '10.0.0.9', port: 9090 });
    assert.deepEqual(codec.decodeOutExclKey(codec.encodeOutExclKey({ netnsCookie: 0n, port: 5432 })), { netnsCookie: 0n, port: 5432 });
    assert.deepEqual(codec.decodeOutExclKey(codec.encodeOutExclKey({ netnsCookie: 99n, port: 53 })), { netnsCookie: 99n, port: 53 });
    assert.deepEqual(codec.decodeNetnsInfo(codec.encodeNetnsInfo(codec.NM_NETNS_CAPTURE_OUTBOUND)), { flags: 1 });
    assert.deepEqual(codec.decodePodIpInfo(codec.encodePodIpInfo(77n)), { netnsCookie: 77n });
    assert.equal(codec.decodeU64(codec.encodeU64(0xffffffffffffffffn)), 0xffffffffffffffffn);
    assert.equal(codec.encodeSockhashFd(12).length, codec.MAPS.nm_in_listen.valueSize);
  });

  it('daemon cgroup records and UDP counter slots', () => {
    assert.deepEqual(codec.decodeDaemonInfo(codec.encodeDaemonInfo(4242)), { pid: 4242 });
    assert.equal(codec.encodeDaemonInfo(1).length, codec.MAPS.nm_daemon_cg.valueSize);
    assert.equal(codec.encodeU32(3).length, codec.MAPS.nm_udp_stats.keySize);
    assert.deepEqual([0, 1, 2, 3].map(codec.udpSlot), [
      { family: 4, dns: false }, { family: 4, dns: true }, { family: 6, dns: false }, { family: 6, dns: true },
    ]);
    assert.throws(() => codec.udpSlot(codec.NM_UDP_SLOTS), RangeError);
  });

  it('pod keys and records', () => {
    const uid = 'shop/api-7d9f-xk2 ü';
    assert.equal(codec.decodePodKey(codec.encodePodKey(uid)), uid);
    assert.throws(() => codec.encodePodKey(''), RangeError);
    assert.throws(() => codec.encodePodKey('x'.repeat(codec.NM_UID_MAX)), RangeError);
    const rec = { netnsCookie: 12345n, flags: 1, ips: ['10.0.0.5', 'fd00::5'] };
    assert.deepEqual(codec.decodePodRec(codec.encodePodRec(rec)), rec);
    assert.throws(() => codec.encodePodRec({ ...rec, ips: new Array(codec.NM_POD_MAX_IPS + 1).fill('10.0.0.1') }), RangeError);
  });

  it('rodata encoders', () => {
    assert.equal(codec.encodeRodataU16(15001).length, codec.OBJECTS.capture.rodata.nm_outbound_port);
    const sp = codec.encodeSkipPorts([15000, 15001, 15001, 15006]);
    assert.equal(sp.length, codec.OBJECTS.inbound.rodata.nm_skip_ports);
    assert.deepEqual([0, 1, 2, 3].map((i) => sp.readUInt16LE(i * 2)), [15000, 15001, 15006, 0]);
    assert.throws(() => codec.encodeSkipPorts([1, 2, 3, 4, 5, 6, 7, 8, 9]), RangeError);
  });

  it('decoders refuse buffers of the wrong size', () => {
    assert.throws(() => codec.decodeOrigDst(Buffer.alloc(23)), RangeError);
    assert.throws(() => codec.decodeConnKey(Buffer.alloc(17)), RangeError);
  });
});

// --- BTF layout check --------------------------------------------------------------------

interface BtfType {
  id: number; kind: string; name: string; size?: number; type_id?: number; nr_elems?: number;
  members?: { name: string; type_id: number; bits_offset: number }[];
  vars?: { type_id: number; offset: number; size: number }[];
}

class Btf {
  private readonly byId = new Map<number, BtfType>();
  constructor(readonly file: string, types: BtfType[]) { for (const t of types) this.byId.set(t.id, t); }

  static load(file: string): Btf {
    if (!fs.existsSync(file)) assert.fail(`${file} is missing: run 'make bpf' before the unit tests`);
    const out = execFileSync('bpftool', ['btf', 'dump', 'file', file, 'format', 'raw', '-j'], { encoding: 'utf8' });
    return new Btf(file, (JSON.parse(out) as { types: BtfType[] }).types);
  }

  type(id: number): BtfType {
    const t = this.byId.get(id);
    assert.ok(t, `${this.file}: no BTF type ${id}`);
    return t;
  }

  find(kind: string, name: string): BtfType | undefined {
    for (const t of this.byId.values()) if (t.kind === kind && t.name === name) return t;
    return undefined;
  }

  /** Strips typedefs and qualifiers. */
  resolve(id: number): BtfType {
    let t = this.type(id);
    while (['TYPEDEF', 'CONST', 'VOLATILE', 'RESTRICT', 'TYPE_TAG'].includes(t.kind)) t = this.type(t.type_id as number);
    return t;
  }

  sizeOf(id: number): number {
    const t = this.resolve(id);
    if (t.kind === 'ARRAY') return (t.nr_elems as number) * this.sizeOf(t.type_id as number);
    if (t.kind === 'PTR') return 8;
    assert.equal(typeof t.size, 'number', `${this.file}: BTF type ${t.id} (${t.kind}) has no size`);
    return t.size as number;
  }

  /** A BTF-style map definition member encoded as a pointer to an array: its length. */
  mapDefInt(def: BtfType, member: string): number | undefined {
    const m = def.members?.find((x) => x.name === member);
    if (!m) return undefined;
    const arr = this.resolve(this.resolve(m.type_id).type_id as number);
    return arr.nr_elems;
  }

  mapDefTypeSize(def: BtfType, member: 'key' | 'value'): number {
    const m = def.members?.find((x) => x.name === member);
    assert.ok(m, `${this.file}: map definition has no ${member}`);
    return this.sizeOf(this.resolve(m.type_id).type_id as number);
  }

  datasecVars(name: string): { name: string; type_id: number }[] {
    const sec = this.find('DATASEC', name);
    return (sec?.vars ?? []).map((v) => { const t = this.type(v.type_id); return { name: t.name, type_id: t.type_id as number }; });
  }
}

describe('bpf-codec: layouts agree with the compiled objects (BTF)', () => {
  const buildDir = path.join(repoRoot(), 'bpf', 'build');
  const objects = Object.fromEntries(
    Object.entries(codec.OBJECTS).map(([k, o]) => [k, () => Btf.load(path.join(buildDir, o.file))]),
  ) as Record<keyof typeof codec.OBJECTS, () => Btf>;
  const all = () => Object.values(objects).map((f) => f());

  for (const [name, layout] of Object.entries(codec.LAYOUTS)) {
    it(`struct ${name}`, () => {
      const found = all().map((b) => ({ b, t: b.find('STRUCT', name) })).filter((x) => x.t !== undefined);
      assert.ok(found.length > 0, `struct ${name} is in no compiled object: is it still used by a map?`);
      for (const { b, t } of found) {
        const st = t as BtfType;
        assert.equal(st.size, layout.size, `${b.file}: sizeof(struct ${name})`);
        const members = st.members ?? [];
        assert.deepEqual(members.map((m) => m.name).sort(), Object.keys(layout.fields).sort(), `${b.file}: fields of ${name}`);
        for (const m of members) {
          const f = (layout.fields as Record<string, codec.FieldLayout>)[m.name];
          assert.equal(m.bits_offset % 8, 0, `${name}.${m.name} is a bitfield`);
          assert.equal(m.bits_offset / 8, f.offset, `${b.file}: offsetof(${name}, ${m.name})`);
          assert.equal(b.sizeOf(m.type_id), f.size, `${b.file}: sizeof(${name}.${m.name})`);
        }
      }
    });
  }

  for (const [name, spec] of Object.entries(codec.MAPS)) {
    it(`map ${name}`, () => {
      const b = objects[spec.object]();
      const v = b.datasecVars('.maps').find((x) => x.name === name);
      assert.ok(v, `${b.file} declares no map ${name}`);
      const def = b.resolve(v.type_id);
      assert.equal(b.mapDefInt(def, 'type'), codec.BPF_MAP_TYPE[spec.type], `${name}: map type`);
      assert.equal(b.mapDefTypeSize(def, 'key'), spec.keySize, `${name}: key size`);
      assert.equal(b.mapDefTypeSize(def, 'value'), spec.valueSize, `${name}: value size`);
      assert.equal(b.mapDefInt(def, 'pinning'), 1, `${name}: pinned by name (LIBBPF_PIN_BY_NAME)`);
    });
  }

  it('every map in the objects is in MAPS', () => {
    for (const [obj, f] of Object.entries(objects)) {
      for (const v of f().datasecVars('.maps')) {
        assert.ok(v.name in codec.MAPS, `${obj}: map ${v.name} is not described in bpf-codec.ts MAPS`);
      }
    }
  });

  for (const [obj, o] of Object.entries(codec.OBJECTS)) {
    it(`${obj}: programs and rodata`, () => {
      const b = objects[obj as keyof typeof codec.OBJECTS]();
      for (const p of o.programs) assert.ok(b.find('FUNC', p), `${o.file} has no program ${p}`);
      const vars = b.datasecVars('.rodata');
      assert.deepEqual(vars.map((v) => v.name).sort(), Object.keys(o.rodata).sort(), `${o.file}: .rodata variables`);
      for (const v of vars) assert.equal(b.sizeOf(v.type_id), (o.rodata as Record<string, number>)[v.name], `${o.file}: sizeof(${v.name})`);
    });
  }
});
