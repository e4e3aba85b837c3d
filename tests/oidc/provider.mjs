// A real, certified OpenID provider (npm oidc-provider) for gateway-agent's identity tests.
//
//   node provider.mjs <port> <private-jwks-file>
//
// Listens on http://127.0.0.1:<port> (loopback only) and prints `READY <issuer>` once it
// accepts connections. One confidential client, `gateway-test` / `gateway-test-secret`,
// may use client_credentials; with `resource=<absolute URI>` the grant returns an RFC 9068
// JWT access token for that audience carrying the requested scopes (of mcp:tools,
// mcp:admin). Env: OIDC_TOKEN_TTL (seconds, default 300), OIDC_TOKEN_ALG (RS256 | ES256).
import { Provider } from './deps.mjs';
import { loadOrCreateKeys } from './keys.mjs';

const [port, keyFile] = process.argv.slice(2);
if (!port || !keyFile) {
  console.error('usage: node provider.mjs <port> <private-jwks-file>');
  process.exit(2);
}
const ttl = Number(process.env.OIDC_TOKEN_TTL ?? 300);
const alg = process.env.OIDC_TOKEN_ALG ?? 'RS256';
const scopes = ['mcp:tools', 'mcp:admin'];
const issuer = `http://127.0.0.1:${port}`;

const provider = new Provider(issuer, {
  jwks: await loadOrCreateKeys(keyFile),
  clients: [{
    client_id: 'gateway-test',
    client_secret: 'gateway-test-secret',
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    scope: scopes.join(' '),
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  scopes: ['openid', ...scopes],
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: (_ctx, _client, oneOf) => oneOf,
      useGrantedResource: () => true,
      getResourceServerInfo: (_ctx, resource) => ({
        scope: scopes.join(' '),
        audience: resource,
        accessTokenTTL: ttl,
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg } },
      }),
    },
  },
  ttl: { ClientCredentials: ttl },
});
provider.on('server_error', (_ctx, err) => console.error('server_error', err));

const server = provider.listen(Number(port), '127.0.0.1', () => {
  console.log(`READY ${issuer}`);
});
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
