// Signs arbitrary (possibly hostile) tokens with the test provider's keys.
//
//   node mint.mjs <private-jwks-file> '<header json>' '<claims json>' [count]
//
// Prints the compact JWT; with a count, that many, one a line, each with its own `jti`
// (distinct tokens for benchmarking first-time verification). The header is used as given, except that a missing `kid` gets
// the signing key's (pass "kid": null for a token without one). By `alg`:
//   none   an unsigned token (empty signature);
//   HS*    HMAC keyed with the RSA key's *public* key PEM: the key-confusion attack;
//   other  signed with the file's key of that alg.
import { createHmac, createPublicKey } from 'node:crypto';
import { jose } from './deps.mjs';
import { loadOrCreateKeys } from './keys.mjs';

const [keyFile, headerJson, claimsJson, count] = process.argv.slice(2);
const header = JSON.parse(headerJson);
const { keys } = await loadOrCreateKeys(keyFile);
const b64 = (data) => Buffer.from(data).toString('base64url');

const pick = (alg) => {
  const key = keys.find((k) => k.alg === alg) ?? keys.find((k) => k.kty === 'RSA');
  if (!key) throw new Error(`no key for ${alg} in ${keyFile}`);
  return key;
};
const key = pick(header.alg);
if (!('kid' in header)) header.kid = key.kid;
if (header.kid === null) delete header.kid;

async function mint(payload) {
  if (header.alg === 'none') {
    return `${b64(JSON.stringify(header))}.${b64(payload)}.`;
  } else if (header.alg.startsWith('HS')) {
    const { d, p, q, dp, dq, qi, ...pub } = key;
    const pem = createPublicKey({ key: pub, format: 'jwk' }).export({ type: 'spki', format: 'pem' });
    const input = `${b64(JSON.stringify(header))}.${b64(payload)}`;
    const mac = createHmac(`sha${header.alg.slice(2)}`, pem).update(input).digest('base64url');
    return `${input}.${mac}`;
  } else {
    return new jose.CompactSign(payload)
      .setProtectedHeader(header)
      .sign(await jose.importJWK(key, header.alg));
  }
}

if (count === undefined) {
  process.stdout.write(`${await mint(Buffer.from(claimsJson))}\n`);
} else {
  const claims = JSON.parse(claimsJson);
  const lines = [];
  for (let i = 0; i < Number(count); i += 1) {
    lines.push(await mint(Buffer.from(JSON.stringify({ ...claims, jti: `${i}` }))));
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}
