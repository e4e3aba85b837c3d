// The test provider's signing keys as a private JWKS file: created on first use, reused
// after, so a provider restarted on the same file keeps its keys and a new file is a
// key rotation. mint.mjs reads the same file to sign deliberately bad tokens.
import { existsSync, readFileSync, writeFileSync, renameSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { jose } from './deps.mjs';

const { generateKeyPair, exportJWK } = jose;

export async function loadOrCreateKeys(path) {
  if (existsSync(path)) return JSON.parse(readFileSync(path, 'utf8'));
  const keys = [];
  for (const alg of ['RS256', 'ES256']) {
    const { privateKey } = await generateKeyPair(alg, { extractable: true });
    keys.push({ ...(await exportJWK(privateKey)), kid: `${alg.toLowerCase()}-${randomUUID()}`, alg, use: 'sig' });
  }
  const jwks = { keys };
  // Written whole then renamed: a concurrent reader never sees half a file.
  writeFileSync(`${path}.tmp`, JSON.stringify(jwks), { mode: 0o600 });
  renameSync(`${path}.tmp`, path);
  return jwks;
}
