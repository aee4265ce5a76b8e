// The support plane from the outside: a provider admin (an API token of the provider tenant),
// operators who sign in with password + TOTP (otplib), managed devices enrolled with the real
// `custos device` command, and DPoP proofs made with `jose` from the device's key file — the
// way an attacker holding a stolen workstation's key would make them.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, createPrivateKey, createPublicKey, randomUUID } from 'node:crypto';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { SignJWT, calculateJwkThumbprint, exportJWK, generateKeyPair } from 'jose';
import { authenticator } from 'otplib';
import { custosBin, request, runAdmin, withStore } from './server.mjs';

const execFileP = promisify(execFile);

export const OPERATOR_PASSWORD = 'granite-Meadow-Signal-83';

// A posture that satisfies the default device policy, as an MDM agent would report it.
export function compliantPosture() {
  return {
    disk_encrypted: true,
    screen_lock: true,
    edr_running: true,
    last_patch: new Date().toISOString().slice(0, 10),
  };
}

// Runs `custos device ARGS...`; returns { code, stdout, stderr } (never throws on exit status).
export async function runDevice(args, { input } = {}) {
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([key]) => !key.startsWith('CUSTOS_')),
  );
  return new Promise((resolve) => {
    const child = execFile(custosBin, withStore(['device', ...args]), { env, timeout: 30_000 },
      (err, stdout, stderr) => resolve({ code: err ? (err.code ?? 1) : 0, stdout, stderr }));
    if (input !== undefined) child.stdin.end(input);
  });
}

// The provider plane of one server.
export async function providerAdmin(server) {
  const token = await runAdmin([
    'create-api-token', '--tenant', 'provider', '--data-dir', server.dataDir, '--name', 'secops',
  ]);
  const api = (method, pathAndQuery, opts = {}) =>
    request(server.baseUrl + pathAndQuery, { method, token, ...opts });
  return { token, api };
}

export async function createVendor(admin, { name, employingEntity = `${name} Ltd`, country = 'CR' }) {
  const res = await admin.api('POST', '/provider/api/v1/vendors', {
    body: { name, employingEntity, country },
  });
  assert.equal(res.status, 201, res.text);
  return res.json;
}

// A provider-tenant user with a password and an active TOTP factor, made an operator of `vendor`.
export async function createOperator(admin, vendor, { login }) {
  const users = (method, p, opts) => admin.api(method, `/t/provider/api/v1${p}`, opts);
  const created = await users('POST', '/users?activate=true', {
    body: {
      profile: { firstName: 'Op', lastName: login.split('@')[0], email: login, login },
      credentials: { password: { value: OPERATOR_PASSWORD } },
    },
  });
  assert.equal(created.status, 200, created.text);
  const userId = created.json.id;
  const enrolled = await users('POST', `/users/${userId}/factors`, {
    body: { factorType: 'token:software:totp', provider: 'GOOGLE' },
  });
  assert.equal(enrolled.status, 200, enrolled.text);
  const secret = enrolled.json._embedded.activation.sharedSecret;
  const activated = await users(
    'POST', `/users/${userId}/factors/${enrolled.json.id}/lifecycle/activate`,
    { body: { passCode: authenticator.generate(secret) } },
  );
  assert.equal(activated.status, 200, activated.text);
  const linked = await admin.api('POST', '/provider/api/v1/operators', {
    body: { userId, vendorId: vendor.id },
  });
  assert.equal(linked.status, 201, linked.text);
  return { userId, login, secret, factorId: enrolled.json.id, stepsUsed: 0 };
}

// Password + TOTP through the provider tenant's sign-in; returns the session token. Each call
// uses a later TOTP step than the last (codes are single-use; the server accepts one step of
// skew each side).
export async function signInOperator(server, op) {
  const base = `${server.baseUrl}/t/provider/api/v1`;
  const primary = await request(`${base}/authn`, {
    method: 'POST', body: { username: op.login, password: OPERATOR_PASSWORD },
  });
  assert.equal(primary.status, 200, primary.text);
  assert.equal(primary.json.status, 'MFA_REQUIRED', primary.text);
  op.stepsUsed += 1;
  const code = authenticator.clone({ epoch: Date.now() + op.stepsUsed * 30_000 }).generate(op.secret);
  const verified = await request(`${base}/authn/factors/${op.factorId}/verify`, {
    method: 'POST', body: { stateToken: primary.json.stateToken, passCode: code },
  });
  assert.equal(verified.status, 200, verified.text);
  assert.equal(verified.json.status, 'SUCCESS', verified.text);
  return verified.json.sessionToken;
}

// Enrols a device with `custos device enroll` and reports `posture` with `custos device report`.
export async function enrollDevice(server, admin, vendor, { name, posture = compliantPosture() }) {
  const issued = await admin.api('POST', '/provider/api/v1/devices/enrollment_tokens', {
    body: { vendorId: vendor.id, name },
  });
  assert.equal(issued.status, 201, issued.text);
  const dir = path.join(await mkdtemp(path.join(os.tmpdir(), 'custos-device-')), 'device');
  const enrolled = await runDevice(['enroll', '--server', server.baseUrl, '--token',
    issued.json.token, '--dir', dir]);
  assert.equal(enrolled.code, 0, `custos device enroll: ${enrolled.stderr}${enrolled.stdout}`);
  const config = JSON.parse(await readFile(path.join(dir, 'device.json'), 'utf8'));
  const postureFile = path.join(dir, '..', 'posture.json');
  await writeFile(postureFile, JSON.stringify(posture));
  const reported = await runDevice(['report', '--dir', dir, '--posture-file', postureFile]);
  assert.equal(reported.code, 0, `custos device report: ${reported.stderr}${reported.stdout}`);
  return { dir, id: config.deviceId, key: await deviceKey(dir) };
}

// The device's key as an attacker who copied the key file holds it.
export async function deviceKey(dir) {
  const pem = await readFile(path.join(dir, 'device.key'), 'utf8');
  const privateKey = createPrivateKey(pem);
  const jwk = createPublicKey(pem).export({ format: 'jwk' });
  return { privateKey, jwk, jkt: await calculateJwkThumbprint(jwk) };
}

// A key that was never enrolled (another machine).
export async function strangerKey() {
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  const jwk = await exportJWK(publicKey);
  return { privateKey, jwk, jkt: await calculateJwkThumbprint(jwk) };
}

const b64url = (buf) => Buffer.from(buf).toString('base64url');

// An RFC 9449 DPoP proof. `overrides` replace or remove (undefined) claims; `header` adds to
// the protected header.
export async function dpopProof(key, method, url, { accessToken, overrides = {}, header = {} } = {}) {
  const claims = {
    jti: randomUUID(),
    htm: method,
    htu: url,
    iat: Math.floor(Date.now() / 1000),
  };
  if (accessToken) claims.ath = b64url(createHash('sha256').update(accessToken).digest());
  Object.assign(claims, overrides);
  for (const k of Object.keys(claims)) if (claims[k] === undefined) delete claims[k];
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: key.jwk, ...header })
    .sign(key.privateKey);
}

// Exchanges a session for a DPoP-bound operator token at the provider token endpoint.
export async function operatorToken(server, key, sessionToken) {
  const url = `${server.baseUrl}/provider/oauth2/v1/token`;
  const res = await fetch(url, {
    method: 'POST',
    headers: {
      'Content-Type': 'application/x-www-form-urlencoded',
      DPoP: await dpopProof(key, 'POST', url),
    },
    body: new URLSearchParams({
      grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
      subject_token: sessionToken,
      subject_token_type: 'urn:custos:params:oauth:token-type:session',
    }),
  });
  const json = await res.json();
  return { status: res.status, json };
}

// An operator request with `Authorization: DPoP` and a fresh proof by `key`.
export async function operatorCall(server, key, accessToken, method, pathAndQuery, opts = {}) {
  const url = server.baseUrl + pathAndQuery;
  const htu = url.split('?')[0];
  const proof = 'proof' in opts
    ? opts.proof
    : await dpopProof(key, method, htu, { accessToken, ...opts.proofOptions });
  const headers = { Authorization: `${opts.scheme ?? 'DPoP'} ${accessToken}` };
  if (proof !== null) headers.DPoP = proof;
  return request(url, { method, headers, body: opts.body });
}

// Events of a tenant's System Log (or `/t/provider`), oldest first, of the given types.
export async function tenantEvents(server, tenantName, token, types) {
  const out = [];
  let url = `${server.baseUrl}/t/${tenantName}/api/v1/logs?limit=1000`;
  for (;;) {
    const res = await request(url, { token });
    assert.equal(res.status, 200, res.text);
    out.push(...res.json);
    const next = (res.headers.get('link') ?? '').match(/<([^>]+)>;\s*rel="next"/);
    if (!next || res.json.length === 0) break;
    url = next[1];
  }
  return types ? out.filter((e) => types.includes(e.eventType)) : out;
}
