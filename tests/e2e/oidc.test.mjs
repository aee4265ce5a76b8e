// OpenID Connect end to end with the certified relying-party library `openid-client`: discovery,
// the authorization code flow with PKCE through the real sign-in page (password + TOTP from
// otplib), ID and access tokens checked with `jose` against the JWKS, userinfo, refresh with
// rotation and reuse detection, introspection, revocation, logout, client credentials, DPoP; and
// the OpenID Foundation's Basic OP checks that apply.

import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import * as client from 'openid-client';
import { createRemoteJWKSet, jwtVerify, decodeProtectedHeader, calculateJwkThumbprint, exportJWK } from 'jose';
import { authenticator } from 'otplib';
import { request, serverTest, sleep, startServer, tenantApi } from './lib/server.mjs';
import { CookieJar, get, parseForm, postForm, signInThrough } from './lib/browser.mjs';

let server;
const test = serverTest(() => server);
const PASSWORD = 'meadow-Copper-Signal-61';
const REDIRECT = 'https://app.example/callback';
const LOGOUT_REDIRECT = 'https://app.example/signed-out';

let api;
let issuer;
let user; // { id, login, secret }
let web; // confidential app (client_secret_basic)
let spa; // public app (PKCE, DPoP)
let service; // client_credentials (client_secret_post)

const insecure = { execute: [client.allowInsecureRequests] };

async function createApp(body) {
  const res = await api('POST', '/api/v1/apps', { body });
  assert.equal(res.status, 200, res.text);
  return res.json;
}

before(async () => {
  server = await startServer({ tenants: ['acme'] });
  api = tenantApi(server);
  issuer = `${server.baseUrl}/t/acme`;
  const login = 'grace@acme.example';
  const created = await api('POST', '/api/v1/users?activate=true', {
    body: {
      profile: { firstName: 'Grace', lastName: 'Hopper', email: login, login, locale: 'en_US' },
      credentials: { password: { value: PASSWORD } },
    },
  });
  assert.equal(created.status, 200, created.text);
  const enrolled = await api('POST', `/api/v1/users/${created.json.id}/factors`, {
    body: { factorType: 'token:software:totp', provider: 'GOOGLE' },
  });
  const secret = enrolled.json._embedded.activation.sharedSecret;
  const activated = await api('POST', `/api/v1/users/${created.json.id}/factors/${enrolled.json.id}/lifecycle/activate`, {
    body: { passCode: authenticator.generate(secret) },
  });
  assert.equal(activated.status, 200, activated.text);
  user = { id: created.json.id, login, secret };

  web = await createApp({
    label: 'Payroll',
    credentials: { oauthClient: { token_endpoint_auth_method: 'client_secret_basic' } },
    settings: { oauthClient: {
      application_type: 'web',
      redirect_uris: [REDIRECT],
      post_logout_redirect_uris: [LOGOUT_REDIRECT],
      response_types: ['code'],
      grant_types: ['authorization_code', 'refresh_token'],
    } },
  });
  spa = await createApp({
    label: 'Dashboard',
    credentials: { oauthClient: { token_endpoint_auth_method: 'none' } },
    settings: { oauthClient: {
      application_type: 'browser',
      redirect_uris: [REDIRECT],
      response_types: ['code'],
      grant_types: ['authorization_code', 'refresh_token'],
    } },
  });
  service = await createApp({
    label: 'Nightly sync',
    credentials: { oauthClient: { token_endpoint_auth_method: 'client_secret_post' } },
    settings: { oauthClient: { application_type: 'service', grant_types: ['client_credentials'], response_types: [] } },
  });
});

after(async () => {
  const status = await server.stop();
  assert.equal(status.code, 0, `custos exit status after SIGTERM: ${JSON.stringify(status)}`);
});

test('discovery passes the Config OP checks and the JWKS serves ES256 and EdDSA keys', async () => {
  const config = await client.discovery(new URL(issuer), web.credentials.oauthClient.client_id,
    undefined, client.ClientSecretBasic(web.credentials.oauthClient.client_secret), insecure);
  const md = config.serverMetadata();
  assert.equal(md.issuer, issuer);
  for (const key of ['authorization_endpoint', 'token_endpoint', 'userinfo_endpoint', 'jwks_uri', 'end_session_endpoint', 'introspection_endpoint', 'revocation_endpoint']) {
    assert.ok(md[key].startsWith(`${issuer}/`), `${key} under the issuer: ${md[key]}`);
  }
  assert.ok(md.response_types_supported.includes('code'));
  assert.deepEqual(md.subject_types_supported, ['public']);
  assert.ok(md.id_token_signing_alg_values_supported.includes('ES256'));
  assert.ok(md.scopes_supported.includes('openid'));
  assert.deepEqual(md.code_challenge_methods_supported, ['S256']);
  const jwks = await request(md.jwks_uri);
  assert.equal(jwks.status, 200);
  const algs = jwks.json.keys.map((k) => k.alg).sort();
  assert.deepEqual(algs, ['ES256', 'EdDSA']);
  for (const k of jwks.json.keys) {
    assert.equal(k.d, undefined, 'no private key material');
    assert.ok(k.kid);
    assert.equal(k.use, 'sig');
  }
});

test('authorization code + PKCE through the sign-in page, tokens, userinfo, refresh rotation and reuse, introspection, revocation, logout', { timeout: 120_000 }, async () => {
  const { client_id, client_secret } = web.credentials.oauthClient;
  const config = await client.discovery(new URL(issuer), client_id, undefined, client.ClientSecretBasic(client_secret), insecure);
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const authUrl = client.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT,
    scope: 'openid profile email offline_access',
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    nonce,
    login_hint: user.login,
  });
  const jar = new CookieJar();
  // The page offers a form that works without JavaScript and is pre-filled from login_hint.
  const page = await get(authUrl, jar);
  assert.equal(page.status, 200);
  assert.match(page.headers.get('content-type'), /text\/html/);
  assert.match(page.headers.get('content-security-policy'), /default-src 'none'/);
  assert.doesNotMatch(page.text, /<script/i);
  assert.match(page.text, /<label for="password">/);
  assert.equal(parseForm(page.text).fields.username, user.login);

  const back = await signInThrough(authUrl, jar, { username: user.login, password: PASSWORD, totpSecret: user.secret });
  assert.equal(back.status, 303, back.text);
  const callback = new URL(back.location);
  assert.equal(callback.origin + callback.pathname, REDIRECT);
  assert.equal(callback.searchParams.get('state'), state);
  assert.equal(callback.searchParams.get('iss'), issuer);

  const tokens = await client.authorizationCodeGrant(config, callback, {
    pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce,
  });
  assert.equal(tokens.token_type.toLowerCase(), 'bearer');
  const claims = tokens.claims();
  assert.equal(claims.sub, user.id);
  assert.equal(claims.nonce, nonce);
  assert.equal(claims.aud, client_id);
  assert.deepEqual(claims.amr, ['pwd', 'otp']);
  assert.equal(claims.email, user.login);
  assert.equal(claims.given_name, 'Grace');

  // Both tokens verify with jose against the published keys.
  const jwks = createRemoteJWKSet(new URL(`${issuer}/oauth2/v1/keys`));
  const id = await jwtVerify(tokens.id_token, jwks, { issuer, audience: client_id });
  assert.equal(decodeProtectedHeader(tokens.id_token).alg, 'ES256');
  assert.equal(id.payload.sub, user.id);
  const at = await jwtVerify(tokens.access_token, jwks, { issuer, typ: 'at+jwt' });
  assert.equal(at.payload.client_id, client_id);
  assert.equal(at.payload.sub, user.id);
  assert.match(at.payload.scope, /openid/);

  const info = await client.fetchUserInfo(config, tokens.access_token, user.id);
  assert.equal(info.sub, user.id);
  assert.equal(info.preferred_username, user.login);
  assert.equal(info.email, user.login);
  const posted = await request(`${issuer}/oauth2/v1/userinfo`, { method: 'POST', raw: `access_token=${tokens.access_token}`, headers: { 'Content-Type': 'application/x-www-form-urlencoded' } });
  assert.equal(posted.status, 200, posted.text);
  assert.equal(posted.json.sub, user.id);

  // Introspection and revocation.
  const active = await client.tokenIntrospection(config, tokens.access_token);
  assert.equal(active.active, true);
  assert.equal(active.sub, user.id);
  assert.equal(active.client_id, client_id);
  await client.tokenRevocation(config, tokens.access_token);
  const inactive = await client.tokenIntrospection(config, tokens.access_token);
  assert.equal(inactive.active, false);
  const garbage = await client.tokenIntrospection(config, 'not-a-token');
  assert.equal(garbage.active, false);

  // Refresh rotates; the old refresh token presented again revokes the family.
  assert.ok(tokens.refresh_token);
  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
  assert.notEqual(refreshed.refresh_token, tokens.refresh_token);
  assert.equal((await client.tokenIntrospection(config, refreshed.access_token)).active, true);
  await assert.rejects(client.refreshTokenGrant(config, tokens.refresh_token), (err) => err.error === 'invalid_grant');
  await assert.rejects(client.refreshTokenGrant(config, refreshed.refresh_token), (err) => err.error === 'invalid_grant',
    'reuse detection revoked the whole family');
  assert.equal((await client.tokenIntrospection(config, refreshed.access_token)).active, false,
    'and the access tokens of the family');

  // The code is single-use (Basic OP: code reuse refused).
  await assert.rejects(client.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce }),
    (err) => err.error === 'invalid_grant');

  // SSO: a second authorization with the session cookie needs no sign-in.
  const second = client.buildAuthorizationUrl(config, { redirect_uri: REDIRECT, scope: 'openid', state: 's2', code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256' });
  const jar2 = jar;
  const signedIn = await get(second, jar2);
  assert.equal(signedIn.status, 303, signedIn.text);
  const silent = await get(client.buildAuthorizationUrl(config, { redirect_uri: REDIRECT, scope: 'openid', state: 's3', prompt: 'none', code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256' }), jar2);
  assert.equal(silent.status, 303, silent.text);
  assert.ok(new URL(silent.location).searchParams.get('code'));

  // RP-initiated logout ends the session: prompt=none then says login_required.
  const logoutUrl = client.buildEndSessionUrl(config, { id_token_hint: tokens.id_token, post_logout_redirect_uri: LOGOUT_REDIRECT, state: 'bye' });
  const out = await get(logoutUrl, jar2);
  assert.equal(out.status, 303, out.text);
  assert.equal(out.location, `${LOGOUT_REDIRECT}?state=bye`);
  const none = await get(client.buildAuthorizationUrl(config, { redirect_uri: REDIRECT, scope: 'openid', state: 's4', prompt: 'none', code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256' }), jar2);
  assert.equal(none.status, 302);
  const noneUrl = new URL(none.location);
  assert.equal(noneUrl.searchParams.get('error'), 'login_required');
  assert.equal(noneUrl.searchParams.get('state'), 's4');

  // Every issuance is in the System Log.
  const events = await api('GET', '/api/v1/logs?limit=1000');
  const types = events.json.map((e) => e.eventType);
  for (const type of ['app.oauth2.as.authorize.code', 'app.oauth2.as.token.grant', 'app.oauth2.as.token.detect_reuse', 'app.oauth2.as.token.revoke']) {
    assert.ok(types.includes(type), `System Log has ${type}`);
  }
  assert.doesNotMatch(events.text, new RegExp(tokens.access_token.slice(-20)), 'no token in the log');
});

test('a public client with PKCE gets DPoP-bound tokens; userinfo needs the proof', { timeout: 120_000 }, async () => {
  const { client_id } = spa.credentials.oauthClient;
  const config = await client.discovery(new URL(issuer), client_id, undefined, client.None(), insecure);
  const keyPair = await client.randomDPoPKeyPair('ES256');
  const dpop = client.getDPoPHandle(config, keyPair);
  const verifier = client.randomPKCECodeVerifier();
  // Without PKCE a public client is refused (redirected with invalid_request).
  const noPkce = await get(client.buildAuthorizationUrl(config, { redirect_uri: REDIRECT, scope: 'openid', state: 'x' }), new CookieJar());
  assert.equal(noPkce.status, 302);
  assert.equal(new URL(noPkce.location).searchParams.get('error'), 'invalid_request');
  await sleep(31_000); // the TOTP step used by the previous test's sign-ins must pass
  const authUrl = client.buildAuthorizationUrl(config, { redirect_uri: REDIRECT, scope: 'openid profile', state: 'p1', code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256' });
  const back = await signInThrough(authUrl, new CookieJar(), { username: user.login, password: PASSWORD, totpSecret: user.secret });
  assert.equal(back.status, 303, back.text);
  const tokens = await client.authorizationCodeGrant(config, new URL(back.location), { pkceCodeVerifier: verifier, expectedState: 'p1' }, undefined, { DPoP: dpop });
  assert.equal(tokens.token_type.toLowerCase(), 'dpop');
  const at = await jwtVerify(tokens.access_token, createRemoteJWKSet(new URL(`${issuer}/oauth2/v1/keys`)), { issuer });
  assert.equal(at.payload.cnf.jkt, await calculateJwkThumbprint(await exportJWK(keyPair.publicKey)));
  const info = await client.fetchUserInfo(config, tokens.access_token, client.skipSubjectCheck, { DPoP: dpop });
  assert.equal(info.sub, user.id);
  // The same token as a Bearer token, without the key, is refused.
  const bearer = await request(`${issuer}/oauth2/v1/userinfo`, { headers: { Authorization: `Bearer ${tokens.access_token}` } });
  assert.equal(bearer.status, 401, bearer.text);
  assert.match(bearer.headers.get('www-authenticate'), /invalid_token/);
});

test('client credentials with client_secret_post and private_key_jwt; wrong secrets get 401 invalid_client', async () => {
  const { client_id, client_secret } = service.credentials.oauthClient;
  const config = await client.discovery(new URL(issuer), client_id, undefined, client.ClientSecretPost(client_secret), insecure);
  const tokens = await client.clientCredentialsGrant(config, { scope: 'sync:read' });
  const at = await jwtVerify(tokens.access_token, createRemoteJWKSet(new URL(`${issuer}/oauth2/v1/keys`)), { issuer, typ: 'at+jwt' });
  assert.equal(at.payload.sub, client_id);
  assert.equal(at.payload.scope, 'sync:read');
  assert.equal(tokens.id_token, undefined);
  assert.equal(tokens.refresh_token, undefined);

  const wrong = await request(`${issuer}/oauth2/v1/token`, { method: 'POST', raw: new URLSearchParams({ grant_type: 'client_credentials', client_id, client_secret: 'nope' }).toString(), headers: { 'Content-Type': 'application/x-www-form-urlencoded' } });
  assert.equal(wrong.status, 401, wrong.text);
  assert.equal(wrong.json.error, 'invalid_client');
  assert.ok(wrong.headers.get('www-authenticate'));
  const unsupported = await request(`${issuer}/oauth2/v1/token`, { method: 'POST', raw: new URLSearchParams({ grant_type: 'password', client_id, client_secret, username: 'a', password: 'b' }).toString(), headers: { 'Content-Type': 'application/x-www-form-urlencoded' } });
  assert.equal(unsupported.status, 400, unsupported.text);
  assert.equal(unsupported.json.error, 'unsupported_grant_type');
  const notForm = await request(`${issuer}/oauth2/v1/token`, { method: 'POST', body: { grant_type: 'client_credentials' } });
  assert.equal(notForm.status, 400);
  assert.equal(notForm.json.error, 'invalid_request');

  // private_key_jwt: the app registers its public key; openid-client signs the assertion.
  // A WebCrypto key pair, as openid-client takes it.
  const { privateKey, publicKey } = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify']);
  const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256' };
  const pkj = await createApp({
    label: 'Signer',
    credentials: { oauthClient: { token_endpoint_auth_method: 'private_key_jwt' } },
    settings: { oauthClient: { application_type: 'service', grant_types: ['client_credentials'], response_types: [], jwks: { keys: [jwk] } } },
  });
  assert.equal(pkj.credentials.oauthClient.client_secret, undefined);
  const pkjConfig = await client.discovery(new URL(issuer), pkj.credentials.oauthClient.client_id, undefined, client.PrivateKeyJwt({ key: privateKey, kid: 'k1' }), insecure);
  const signed = await client.clientCredentialsGrant(pkjConfig, {});
  assert.ok(signed.access_token);
});

test('Basic OP checks: redirect URI mismatch, unknown client, repeated parameters, POST to authorize, max_age, prompt=login; an app with EdDSA ID tokens', { timeout: 120_000 }, async () => {
  const { client_id, client_secret } = web.credentials.oauthClient;
  const config = await client.discovery(new URL(issuer), client_id, undefined, client.ClientSecretBasic(client_secret), insecure);
  const mismatch = await get(client.buildAuthorizationUrl(config, { redirect_uri: 'https://evil.example/cb', scope: 'openid' }), new CookieJar());
  assert.equal(mismatch.status, 400, 'shown to the user, never redirected');
  assert.equal(mismatch.location, null);
  assert.match(mismatch.text, /redirect_uri is not registered/);
  const unknown = await get(`${issuer}/oauth2/v1/authorize?client_id=0oanobody&redirect_uri=${encodeURIComponent(REDIRECT)}&response_type=code&scope=openid`, new CookieJar());
  assert.equal(unknown.status, 400);
  const badScope = await get(client.buildAuthorizationUrl(config, { redirect_uri: REDIRECT, scope: 'openid telepathy', state: 'q' }), new CookieJar());
  assert.equal(new URL(badScope.location).searchParams.get('error'), 'invalid_scope');
  // A parameter sent twice (OIDC Core 3.1.2.1): invalid_request back to the client, naming it;
  // an ambiguous client_id is an error page.
  const twice = new URL(client.buildAuthorizationUrl(config, { redirect_uri: REDIRECT, scope: 'openid', state: 'r' }));
  twice.searchParams.append('scope', 'openid email');
  const repeated = await get(twice, new CookieJar());
  assert.equal(repeated.status, 302, repeated.text);
  assert.equal(new URL(repeated.location).searchParams.get('error'), 'invalid_request');
  assert.match(new URL(repeated.location).searchParams.get('error_description'), /scope/);
  twice.searchParams.append('client_id', client_id);
  assert.equal((await get(twice, new CookieJar())).status, 400);

  await sleep(31_000);
  const jar = new CookieJar();
  // POST to the authorization endpoint works like GET.
  const params = { client_id, redirect_uri: REDIRECT, response_type: 'code', scope: 'openid', state: 'post1' };
  const postPage = await postForm(`${issuer}/oauth2/v1/authorize`, params, jar);
  assert.equal(postPage.status, 200, postPage.text);
  const form = parseForm(postPage.text);
  const afterPassword = await postForm(new URL(form.action, issuer), { ...form.fields, username: user.login, password: PASSWORD }, jar);
  const factorForm = parseForm(afterPassword.text);
  const done = await postForm(new URL(factorForm.action, issuer), { ...factorForm.fields, passcode: authenticator.clone({ epoch: Date.now() + 30_000 }).generate(user.secret) }, jar);
  assert.equal(done.status, 303, done.text);
  assert.equal(new URL(done.location).searchParams.get('state'), 'post1');

  // With the session: no page. With prompt=login or an exceeded max_age: the page again.
  const sso = await get(client.buildAuthorizationUrl(config, { redirect_uri: REDIRECT, scope: 'openid', state: 'a' }), jar);
  assert.equal(sso.status, 303);

  // An app whose ID tokens the tenant's EdDSA key signs, through the same session. Without
  // offline_access there is no refresh token, though the app allows the grant.
  const ed = await createApp({
    label: 'Ledger',
    settings: { oauthClient: {
      application_type: 'web',
      redirect_uris: [REDIRECT],
      grant_types: ['authorization_code', 'refresh_token'],
      id_token_signed_response_alg: 'EdDSA',
    } },
  });
  assert.equal(ed.settings.oauthClient.id_token_signed_response_alg, 'EdDSA');
  const edConfig = await client.discovery(new URL(issuer), ed.credentials.oauthClient.client_id,
    { id_token_signed_response_alg: 'EdDSA' }, client.ClientSecretBasic(ed.credentials.oauthClient.client_secret), insecure);
  assert.ok(edConfig.serverMetadata().id_token_signing_alg_values_supported.includes('EdDSA'));
  const edVerifier = client.randomPKCECodeVerifier();
  const edNonce = client.randomNonce();
  const edBack = await get(client.buildAuthorizationUrl(edConfig, { redirect_uri: REDIRECT, scope: 'openid email', state: 'ed', nonce: edNonce, code_challenge: await client.calculatePKCECodeChallenge(edVerifier), code_challenge_method: 'S256' }), jar);
  assert.equal(edBack.status, 303, edBack.text);
  const edTokens = await client.authorizationCodeGrant(edConfig, new URL(edBack.location), { pkceCodeVerifier: edVerifier, expectedState: 'ed', expectedNonce: edNonce });
  assert.equal(decodeProtectedHeader(edTokens.id_token).alg, 'EdDSA');
  assert.equal(decodeProtectedHeader(edTokens.access_token).alg, 'ES256', 'access tokens stay ES256');
  const edJwks = createRemoteJWKSet(new URL(`${issuer}/oauth2/v1/keys`));
  const edId = await jwtVerify(edTokens.id_token, edJwks, { issuer, audience: ed.credentials.oauthClient.client_id, algorithms: ['EdDSA'] });
  assert.equal(edId.payload.sub, user.id);
  assert.equal(edTokens.claims().email, user.login);
  assert.equal(edTokens.refresh_token, undefined, 'no offline_access, no refresh token');
  const forced = await get(client.buildAuthorizationUrl(config, { redirect_uri: REDIRECT, scope: 'openid', state: 'b', prompt: 'login' }), jar);
  assert.equal(forced.status, 200);
  assert.ok(parseForm(forced.text));
  await sleep(1100);
  const aged = await get(client.buildAuthorizationUrl(config, { redirect_uri: REDIRECT, scope: 'openid', state: 'c', max_age: '1' }), jar);
  assert.equal(aged.status, 200, 'max_age exceeded asks for a fresh sign-in');
  const agedNone = await get(client.buildAuthorizationUrl(config, { redirect_uri: REDIRECT, scope: 'openid', state: 'd', max_age: '1', prompt: 'none' }), jar);
  assert.equal(new URL(agedNone.location).searchParams.get('error'), 'login_required');

  // A wrong password re-shows the page with an error and no session.
  const wrongJar = new CookieJar();
  const page = await get(client.buildAuthorizationUrl(config, { redirect_uri: REDIRECT, scope: 'openid', state: 'w' }), wrongJar);
  const f = parseForm(page.text);
  const refused = await postForm(new URL(f.action, issuer), { ...f.fields, username: user.login, password: 'wrong-password-123' }, wrongJar);
  assert.equal(refused.status, 401);
  assert.match(refused.text, /role="alert"/);
  // A forged form (no CSRF cookie) is refused.
  const forged = await postForm(new URL(f.action, issuer), { ...f.fields, username: user.login, password: PASSWORD }, new CookieJar());
  assert.equal(forged.status, 400);
});

test('key rotation publishes the new key first and keeps signing with the old one until it activates', async () => {
  const before = await request(`${issuer}/oauth2/v1/keys`);
  const { client_id, client_secret } = service.credentials.oauthClient;
  const config = await client.discovery(new URL(issuer), client_id, undefined, client.ClientSecretPost(client_secret), insecure);
  const oldKid = decodeProtectedHeader((await client.clientCredentialsGrant(config, {})).access_token).kid;
  const bad = await api('POST', '/api/v1/oauth2/keys/rotate', { body: { alg: 'RS256' } });
  assert.equal(bad.status, 400, bad.text);
  const rotated = await api('POST', '/api/v1/oauth2/keys/rotate', { body: { alg: 'ES256' } });
  assert.equal(rotated.status, 200, rotated.text);
  assert.ok(Date.parse(rotated.json.activates) > Date.now() + 3600_000, 'activates after the overlap');
  const after = await request(`${issuer}/oauth2/v1/keys`);
  const kids = after.json.keys.map((k) => k.kid);
  assert.equal(kids.length, before.json.keys.length + 1);
  assert.ok(kids.includes(rotated.json.kid) && kids.includes(oldKid));
  const stillOld = decodeProtectedHeader((await client.clientCredentialsGrant(config, {})).access_token).kid;
  assert.equal(stillOld, oldKid);
  const events = await api('GET', '/api/v1/logs?limit=1000');
  assert.ok(events.json.some((e) => e.eventType === 'oauth2.key.rotate'));
});
