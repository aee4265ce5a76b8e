// The peer of the OpenID Connect benchmark (bench/oidc/run.mjs): node-oidc-provider configured
// as close to Custos's client-credentials path as it allows. One confidential client
// (client_secret_basic, client_credentials only); one ES256 signing key; resource indicators,
// whose default resource server gets RFC 9068 JWT access tokens signed with ES256 (Custos's
// format); introspection on; the provider's own in-memory adapter; no dev interactions; run
// with NODE_ENV=production.
//
// oidc-provider refuses to introspect JWT access tokens (reject_structured_tokens:
// "Structured JWT Tokens cannot be introspected"), so a second resource server,
// OPAQUE_RESOURCE, issues opaque tokens (kept in the adapter) for the introspection load.
//
// Environment: PORT (0 picks one), BENCH_CLIENT_ID, BENCH_CLIENT_SECRET. Prints
// "peer listening on http://127.0.0.1:<port>" once ready.
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import Provider from 'oidc-provider';

const JWT_RESOURCE = 'urn:custos:bench:jwt';
const OPAQUE_RESOURCE = 'urn:custos:bench:opaque';

const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const jwk = { ...privateKey.export({ format: 'jwk' }), kid: randomUUID(), alg: 'ES256', use: 'sig' };

const server = createServer();
await new Promise((resolve) => server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  clients: [{
    client_id: process.env.BENCH_CLIENT_ID ?? 'bench',
    client_secret: process.env.BENCH_CLIENT_SECRET ?? 'bench-secret-for-wrk-0123456789abcdef',
    token_endpoint_auth_method: 'client_secret_basic',
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
  }],
  jwks: { keys: [jwk] },
  clientDefaults: { id_token_signed_response_alg: 'ES256' },
  cookies: { keys: [randomUUID()] },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: async (_ctx, _client, oneOf) => oneOf ?? JWT_RESOURCE,
      getResourceServerInfo: async (_ctx, resource) => {
        if (resource === OPAQUE_RESOURCE) {
          return { scope: 'api', audience: OPAQUE_RESOURCE, accessTokenTTL: 3600, accessTokenFormat: 'opaque' };
        }
        return {
          scope: 'api', audience: JWT_RESOURCE, accessTokenTTL: 3600, accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'ES256' } },
        };
      },
    },
  },
});
provider.on('server_error', (_ctx, err) => console.error('peer server_error', err));
server.on('request', provider.callback());
console.log(`peer listening on ${issuer}`);
process.on('SIGTERM', () => server.close(() => process.exit(0)));
