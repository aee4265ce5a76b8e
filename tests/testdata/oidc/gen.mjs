// Writes jwts.json in this folder with the `jose` npm package, as an implementation independent
// of ours. See README.md for how to run it.
import { createRequire } from 'node:module';
import { writeFileSync } from 'node:fs';

const require = createRequire(
  process.env.JOSE_PREFIX ? `${process.env.JOSE_PREFIX}/` : import.meta.url);
const jose = require('jose');
const { version } = require('jose/package.json');

// Test-only keys, made once with jose.generateKeyPair; never use them for anything else.
const kEs256Private = {
  kty: 'EC', crv: 'P-256',
  x: 'xU_H08v-a8ax3aBUQ1BGMk0NFPX6Ah8AiHvnmvEyONU',
  y: 'BtJbG4GQhtt4vYwB9J8DfriTrPv-snXzxuDGYOyTj14',
  d: 'E2AGMP5dgd4ILD20JIGi3qO_a-oPb_z6PKnceLNv0us',
};
const kEd25519Private = {
  kty: 'OKP', crv: 'Ed25519',
  x: 'tTWQAhA2es2CG7JKsGMJxBiIXw3AikUzBb0odvMYTIw',
  d: 'c7ORNRyQ6QV3b5LE7pcmJmfxUm0Bg6bODQSFNnS98Iw',
};
const publicOf = ({ d, ...pub }) => pub;

// 2026-01-01T00:00:00Z, FakeClock's default start.
const kIat = 1767225600;

async function token(name, alg, privateJwk) {
  const kid = `jose-${alg.toLowerCase()}`;
  const claims = {
    iss: 'https://custos.example/t/acme', sub: '00u1example', aud: 'client-1', nonce: 'n-0S6',
  };
  const jwt = await new jose.SignJWT(claims)
    .setProtectedHeader({ alg, kid, typ: 'JWT' })
    .setIssuedAt(kIat)
    .setExpirationTime(kIat + 3600)
    .sign(await jose.importJWK(privateJwk, alg));
  // The private key in the form we seal it: PKCS#8 DER for ES256, the raw seed ("d") for EdDSA.
  let private_bytes;
  if (alg === 'ES256') {
    const pem = await jose.exportPKCS8(await jose.importJWK(privateJwk, alg));
    private_bytes = jose.base64url.encode(Buffer.from(
      pem.replace(/-----[A-Z ]+-----/g, '').replace(/\s+/g, ''), 'base64'));
  } else {
    private_bytes = privateJwk.d;
  }
  return {
    name, alg, jwt, jwk: { ...publicOf(privateJwk), kid }, claims: { ...claims, iat: kIat,
      exp: kIat + 3600 }, private_bytes,
  };
}

const tokens = [
  await token('es256', 'ES256', kEs256Private),
  await token('eddsa', 'EdDSA', kEd25519Private),
];

const generator = `tests/testdata/oidc/gen.mjs with jose ${version}`;
writeFileSync(new URL('jwts.json', import.meta.url),
  JSON.stringify({ generator, tokens }, null, 2) + '\n');
