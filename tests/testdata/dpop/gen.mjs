// Writes thumbprints.json and proofs.json in this folder with the `jose` npm package, as an
// implementation independent of ours. See README.md for how to run it.
import { createRequire } from 'node:module';
import { writeFileSync } from 'node:fs';

const require = createRequire(
  process.env.JOSE_PREFIX ? `${process.env.JOSE_PREFIX}/` : import.meta.url);
const jose = require('jose');
const { version } = require('jose/package.json');

// Test-only keys, made once with jose.generateKeyPair; never use them for anything else.
const kEs256Private = {
  kty: 'EC', crv: 'P-256',
  x: '3qEZyfwJp2jZx1njPIO7p2BcCh3XAxUI8B15bXWczEI',
  y: '5m6nAuW9y0maJJ9CfzJ6CUqFsb8S5I0hgg19KDpQksc',
  d: 'BTv0cAjuXVPB9bd44sVsYRWRAhnUjInYoXacTWFSGLY',
};
const kEd25519Private = {
  kty: 'OKP', crv: 'Ed25519',
  x: 'mhZogodvT6fJNWW7tr45_hbu4qklAsA4sa_mEVnsftc',
  d: 'k9YN-tOiYCdwKus9OOe8Mdi5eEjv3Ebu1QRKn7rEq3I',
};
const publicOf = ({ d, ...pub }) => pub;

// Keys whose thumbprints we check against jose's calculateJwkThumbprint.
const thumbprintKeys = {
  // RFC 7517 appendix A.1, the first (EC) key; "use" and "kid" are not thumbprint members.
  rfc7517_a1_ec: {
    kty: 'EC', crv: 'P-256',
    x: 'MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4',
    y: '4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM',
    use: 'enc', kid: '1',
  },
  // RFC 9449 section 4.1, the key in the example proof's header.
  rfc9449_example: {
    kty: 'EC', crv: 'P-256',
    x: 'l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs',
    y: '9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA',
  },
  // RFC 8037 appendix A.2 (its A.3 publishes the thumbprint too).
  rfc8037_a2_ed25519: {
    kty: 'OKP', crv: 'Ed25519',
    x: '11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo',
  },
  test_es256: publicOf(kEs256Private),
  test_ed25519: publicOf(kEd25519Private),
};

const thumbprints = {};
for (const [name, jwk] of Object.entries(thumbprintKeys)) {
  thumbprints[name] = { jwk, jkt: await jose.calculateJwkThumbprint(jwk, 'sha256') };
}

// 2026-01-01T00:00:00Z, FakeClock's default start.
const kIat = 1767225600;
// The access token of RFC 9449's examples.
const kAccessToken = 'Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU';
const ath = jose.base64url.encode(
  new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(kAccessToken))));

async function proof(name, alg, privateJwk, { method, url, htu, accessToken, iat = kIat }) {
  const key = await jose.importJWK(privateJwk, alg);
  const claims = { htm: method, htu: htu ?? url };
  if (accessToken) claims.ath = ath;
  const jwt = await new jose.SignJWT(claims)
    .setProtectedHeader({ typ: 'dpop+jwt', alg, jwk: publicOf(privateJwk) })
    .setJti(`${name}-jti`)
    .setIssuedAt(iat)
    .sign(key);
  return {
    name, alg, proof: jwt, method, url, iat, jti: `${name}-jti`,
    ...(accessToken ? { access_token: accessToken } : {}),
    jkt: await jose.calculateJwkThumbprint(publicOf(privateJwk), 'sha256'),
  };
}

const resource = 'https://custos.example/provider/api/v1/support/tenants';
const token = 'https://custos.example/provider/oauth2/v1/token';
const proofs = [
  await proof('es256_token', 'ES256', kEs256Private, { method: 'POST', url: token }),
  await proof('es256_resource', 'ES256', kEs256Private,
    { method: 'GET', url: resource, accessToken: kAccessToken }),
  await proof('eddsa_token', 'EdDSA', kEd25519Private, { method: 'POST', url: token }),
  await proof('eddsa_resource', 'EdDSA', kEd25519Private,
    { method: 'GET', url: resource, accessToken: kAccessToken }),
  // The server sees an explicit default port, upper-case host and a query; htu has none of them.
  await proof('es256_normalised', 'ES256', kEs256Private,
    { method: 'GET', url: 'HTTPS://Custos.Example:443/provider/api/v1/devices?limit=20#top',
      htu: 'https://custos.example/provider/api/v1/devices' }),
];

const generator = `tests/testdata/dpop/gen.mjs with jose ${version}`;
writeFileSync(new URL('thumbprints.json', import.meta.url),
  JSON.stringify({ generator, keys: thumbprints }, null, 2) + '\n');
writeFileSync(new URL('proofs.json', import.meta.url),
  JSON.stringify({ generator, proofs }, null, 2) + '\n');
