import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CALLER_STATEMENT_HEADER, newSigningKeyPair, signStatement } from './caller-statement';
import { CallerStatementVerifier, TRUST_FILE_NAME, trustFileFor } from './caller-statement-trust';

const WP = 'spiffe://cluster.local/ns/shop/sa/waypoint';
const WEB = 'spiffe://cluster.local/ns/shop/sa/web';

test('the destination judges the vouched caller, refuses bad statements, trusts only configured keys', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nodemesh-trust-'));
  try {
    const k = newSigningKeyPair();
    const file = trustFileFor(path.join(dir, 'ca.crt'));
    assert.equal(file, path.join(dir, TRUST_FILE_NAME));
    let now = 1_800_000_000_000;
    const v = new CallerStatementVerifier(file, () => now);
    const facts = (headers: Record<string, string>) => ({ sourceId: WP, destination: { address: '10.244.2.2', port: 8080 }, headers });
    const stmt = () => signStatement({ signer: WP, secretKey: k.secretKey }, { caller: WEB, dst: '10.244.2.2:8080', now });
    assert.deepEqual(v.principalFor(facts({})), { ok: true, principal: WP }, 'no statement: the certificate speaks');
    const before = v.principalFor(facts({ [CALLER_STATEMENT_HEADER]: stmt() }));
    assert.equal(!before.ok && before.reason, 'unknown-signer', 'no trust file yet: nobody is trusted');
    fs.writeFileSync(file, JSON.stringify({ [WP]: Buffer.from(k.publicKey).toString('base64url') }));
    now += 2_000; // past the re-read interval
    const ctx = facts({ [CALLER_STATEMENT_HEADER]: stmt() });
    assert.deepEqual(v.principalFor(ctx), { ok: true, principal: WEB, vouchedBy: WP });
    assert.equal(v.principalAfter(ctx), WEB);
    const replayed = v.principalFor(facts({ [CALLER_STATEMENT_HEADER]: ctx.headers[CALLER_STATEMENT_HEADER] }));
    assert.equal(!replayed.ok && replayed.reason, 'replayed');
    assert.equal(v.principalAfter(facts({})), WP);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
