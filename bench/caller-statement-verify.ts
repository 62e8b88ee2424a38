// Per-call cost of verifying a caller statement's Ed25519 signature (issue 9 item 6): it sits
// on the destination's per-tunnel path. tweetnacl (pure JS) against node:crypto (OpenSSL),
// same key, same message. Run: node dist/bench/caller-statement-verify.js [iterations]
import { createPublicKey, verify } from 'node:crypto';
import nacl from 'tweetnacl';
import { newSigningKeyPair, signStatement } from '../daemon/tunnel/caller-statement';

const n = Number(process.argv[2] ?? 2000);
const keys = newSigningKeyPair();
const wire = signStatement({ signer: 'spiffe://cluster.local/ns/shop/sa/waypoint', secretKey: keys.secretKey },
  { caller: 'spiffe://cluster.local/ns/shop/sa/web', dst: '10.244.2.2:8080', now: Date.now() });
const [body, sig] = wire.split('.');
const msg = Buffer.from(body, 'latin1');
const signature = Buffer.from(sig, 'base64url');
const nodeKey = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(keys.publicKey).toString('base64url') }, format: 'jwk' });

function time(name: string, f: () => boolean): number {
  for (let i = 0; i < 50; i++) if (!f()) throw new Error(`${name} did not verify`);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) f();
  const us = Number(process.hrtime.bigint() - t0) / 1000 / n;
  process.stdout.write(`${name.padEnd(24)} ${us.toFixed(1)} us/verify (${n} calls)\n`);
  return us;
}
const a = time('tweetnacl', () => nacl.sign.detached.verify(msg, signature, keys.publicKey));
const b = time('node:crypto (OpenSSL)', () => verify(null, msg, nodeKey, signature));
process.stdout.write(`ratio tweetnacl/node:crypto: ${(a / b).toFixed(1)}x\n`);
