// Signing in as an end user would: password, then a TOTP code from a real authenticator
// implementation (otplib); lockout; and no way to tell an unknown user from a wrong password.

import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import { authenticator } from 'otplib';
import { serverTest, sleep, sqlRows, startServer, tenantApi } from './lib/server.mjs';

const PASSWORD = 'quartz-Harbor-Lantern-58';
const WRONG_PASSWORD = 'quartz-Harbor-Lantern-59';

let fast; // small Argon2 parameters, lockout after 3 failures
let slow; // real Argon2 parameters: hashing dominates the response time
let limited; // the default per-address sign-in rate limit (10 per second, bursts of 20)
const test = serverTest(() => [fast, slow, limited]);

before(async () => {
  fast = await startServer({ settings: { 'authn.lockout_threshold': 3 } });
});

after(async () => {
  for (const s of [fast, slow, limited]) {
    if (!s) continue;
    const status = await s.stop();
    assert.equal(status.code, 0, `custos exit status after SIGTERM: ${JSON.stringify(status)}`);
  }
});

let serial = 0;
async function createUser(api, { password = PASSWORD } = {}) {
  serial += 1;
  const login = `signer.${serial}.${Date.now()}@example.com`;
  const res = await api('POST', '/api/v1/users?activate=true', {
    body: {
      profile: { firstName: 'Sig', lastName: `Ner${serial}`, email: login, login },
      credentials: { password: { value: password } },
    },
  });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.json.status, 'ACTIVE');
  return { id: res.json.id, login };
}

// Sign-in calls carry no API token: they are what a sign-in page sends.
function signIn(api, username, password) {
  return api('POST', '/api/v1/authn', { token: null, body: { username, password } });
}

const withoutErrorId = ({ errorId, ...rest }) => rest;

const TOTP_STEP_MS = 30_000;
const stepOf = (ms) => Math.floor(ms / TOTP_STEP_MS);

// Waits until the TOTP time step after `step` has begun (plus a little margin).
async function waitForStepAfter(step) {
  const wait = (step + 1) * TOTP_STEP_MS - Date.now() + 250;
  if (wait > 0) await sleep(wait);
}

// Finds the first string anywhere in `value` that `pred` accepts.
function findString(value, pred) {
  if (typeof value === 'string') return pred(value) ? value : undefined;
  if (value && typeof value === 'object') {
    for (const v of Object.values(value)) {
      const found = findString(v, pred);
      if (found !== undefined) return found;
    }
  }
  return undefined;
}

test('TOTP enrolment, then password + TOTP sign-in; a replayed code is refused', { timeout: 180_000 }, async () => {
  const api = tenantApi(fast);
  const user = await createUser(api);

  // Enrol: the factor is pending, with a base32 secret, a QR code PNG and an otpauth URI.
  const enrolled = await api('POST', `/api/v1/users/${user.id}/factors`, {
    body: { factorType: 'token:software:totp', provider: 'GOOGLE' },
  });
  assert.equal(enrolled.status, 200, enrolled.text);
  const factor = enrolled.json;
  assert.equal(factor.factorType, 'token:software:totp');
  assert.equal(factor.provider, 'GOOGLE');
  assert.equal(factor.status, 'PENDING_ACTIVATION');
  const activation = factor._embedded?.activation;
  const secret = activation?.sharedSecret;
  assert.match(secret ?? '', /^[A-Z2-7]{16,}=*$/, `base32 sharedSecret in ${enrolled.text}`);
  const qr = activation?._links?.qrcode?.href ?? '';
  assert.ok(qr.startsWith('data:image/png;base64,'), `QR code data URL, got ${qr.slice(0, 40)}`);
  const png = Buffer.from(qr.slice('data:image/png;base64,'.length), 'base64');
  assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  const otpauth = findString(factor, (s) => s.startsWith('otpauth://totp/'));
  assert.ok(otpauth, `an otpauth:// URI in ${enrolled.text}`);
  assert.equal(new URL(otpauth).searchParams.get('secret'), secret);

  const listed = await api('GET', `/api/v1/users/${user.id}/factors`);
  assert.equal(listed.status, 200, listed.text);
  assert.deepEqual(
    listed.json.map((f) => [f.id, f.status]),
    [[factor.id, 'PENDING_ACTIVATION']],
  );
  assert.doesNotMatch(listed.text, new RegExp(secret), 'the secret is shown only at enrolment');

  // A wrong code does not activate it.
  const goodCode = authenticator.generate(secret);
  const wrongCode = String((Number(goodCode) + 1) % 1_000_000).padStart(6, '0');
  const refused = await api('POST', `/api/v1/users/${user.id}/factors/${factor.id}/lifecycle/activate`, {
    body: { passCode: wrongCode },
  });
  assert.equal(refused.status, 403, refused.text);
  assert.equal(refused.json.errorCode, 'E0000068');

  const activationStep = stepOf(Date.now());
  const activated = await api('POST', `/api/v1/users/${user.id}/factors/${factor.id}/lifecycle/activate`, {
    body: { passCode: authenticator.generate(secret) },
  });
  assert.equal(activated.status, 200, activated.text);
  assert.equal(activated.json.status, 'ACTIVE');

  // Password first: MFA is required, and the TOTP factor is offered.
  const primary = await signIn(api, user.login, PASSWORD);
  assert.equal(primary.status, 200, primary.text);
  assert.equal(primary.json.status, 'MFA_REQUIRED');
  assert.equal(primary.json.sessionToken, undefined);
  assert.match(primary.json.stateToken ?? '', /^\S{16,}$/);
  const offered = primary.json._embedded?.factors ?? [];
  assert.ok(offered.some((f) => f.id === factor.id), `factor offered: ${primary.text}`);

  // The code used for activation belongs to an earlier step; use a fresh one.
  await waitForStepAfter(activationStep);
  const code = authenticator.generate(secret);
  const verified = await api('POST', `/api/v1/authn/factors/${factor.id}/verify`, {
    token: null,
    body: { stateToken: primary.json.stateToken, passCode: code },
  });
  assert.equal(verified.status, 200, verified.text);
  assert.equal(verified.json.status, 'SUCCESS');
  const sessionToken = verified.json.sessionToken;
  assert.match(sessionToken ?? '', /^\S{16,}$/);

  // The same code again, in a new sign-in, is refused.
  const again = await signIn(api, user.login, PASSWORD);
  assert.equal(again.json.status, 'MFA_REQUIRED', again.text);
  const replay = await api('POST', `/api/v1/authn/factors/${factor.id}/verify`, {
    token: null,
    body: { stateToken: again.json.stateToken, passCode: code },
  });
  assert.equal(replay.status, 403, replay.text);
  assert.equal(replay.json.errorCode, 'E0000068');
  assert.equal(replay.json.sessionToken, undefined);

  // The SUCCESS answer sets the session cookie, as a browser would keep it; with that cookie
  // (or the session token as a Bearer token) /api/v1/sessions/me names the user.
  const setCookie = verified.headers.get('set-cookie') ?? '';
  const cookie = /^(custos_sid=[^;]+)/.exec(setCookie)?.[1];
  assert.ok(cookie, `a session cookie is set: ${setCookie}`);
  assert.match(setCookie, /HttpOnly/i);
  assert.match(setCookie, /Path=\/t\/acme/);
  const me = await api('GET', '/api/v1/sessions/me', { token: null, headers: { Cookie: cookie } });
  assert.equal(me.status, 200, me.text);
  assert.equal(me.json.userId, user.id);
  assert.equal(me.json.status, 'ACTIVE');
  assert.equal(me.json.mfaActive, true, `the session records the second factor: ${me.text}`);
  assert.ok(!me.text.includes(sessionToken), 'the token is not echoed back');
  const bearer = await api('GET', '/api/v1/sessions/me', {
    token: null,
    headers: { Authorization: `Bearer ${sessionToken}` },
  });
  assert.equal(bearer.status, 200, bearer.text);
  assert.equal(bearer.json.id, me.json.id);
  for (const headers of [{}, { Cookie: `${cookie}x` }, { Authorization: `Bearer ${sessionToken}x` }]) {
    const res = await api('GET', '/api/v1/sessions/me', { token: null, headers });
    assert.notEqual(res.status, 200, `${JSON.stringify(headers)}: ${res.text}`);
  }
  // Signing out ends the session for good.
  const out = await api('DELETE', '/api/v1/sessions/me', { token: null, headers: { Cookie: cookie } });
  assert.equal(out.status, 204, out.text);
  const gone = await api('GET', '/api/v1/sessions/me', { token: null, headers: { Cookie: cookie } });
  assert.notEqual(gone.status, 200, gone.text);
});

test('three wrong passwords lock the account; then the right one fails the same way', async () => {
  const api = tenantApi(fast);
  const user = await createUser(api);
  const failures = [];
  for (let i = 0; i < 3; i += 1) {
    const res = await signIn(api, user.login, WRONG_PASSWORD);
    assert.equal(res.status, 401, res.text);
    assert.equal(res.json.errorCode, 'E0000004');
    assert.equal(res.json.errorSummary, 'Authentication failed');
    failures.push(res);
  }
  const locked = await api('GET', `/api/v1/users/${user.id}`);
  assert.equal(locked.json.status, 'LOCKED_OUT', locked.text);

  const right = await signIn(api, user.login, PASSWORD);
  assert.equal(right.status, 401, right.text);
  assert.deepEqual(withoutErrorId(right.json), withoutErrorId(failures[0].json));
  assert.equal(right.json.sessionToken, undefined);

  // An admin unlocks; the right password works again and the counter starts over.
  const unlock = await api('POST', `/api/v1/users/${user.id}/lifecycle/unlock`);
  assert.equal(unlock.status, 200, unlock.text);
  assert.equal((await api('GET', `/api/v1/users/${user.id}`)).json.status, 'ACTIVE');
  const ok = await signIn(api, user.login, PASSWORD);
  assert.equal(ok.status, 200, ok.text);
  assert.equal(ok.json.status, 'SUCCESS');
  assert.match(ok.json.sessionToken ?? '', /^\S{16,}$/);
  const wrongOnce = await signIn(api, user.login, WRONG_PASSWORD);
  assert.equal(wrongOnce.status, 401);
  assert.equal((await api('GET', `/api/v1/users/${user.id}`)).json.status, 'ACTIVE');
});

test('sign-in events are in the System Log', async () => {
  const api = tenantApi(fast);
  const user = await createUser(api);
  const since = new Date(Date.now() - 2_000).toISOString();
  assert.equal((await signIn(api, user.login, WRONG_PASSWORD)).status, 401);
  assert.equal((await signIn(api, user.login, PASSWORD)).json.status, 'SUCCESS');
  const until = new Date(Date.now() + 2_000).toISOString();
  const res = await api(
    'GET',
    `/api/v1/logs?since=${encodeURIComponent(since)}&until=${encodeURIComponent(until)}` +
      `&filter=${encodeURIComponent('eventType eq "user.session.start"')}&limit=100`,
  );
  assert.equal(res.status, 200, res.text);
  const mine = res.json.filter((e) => e.actor?.alternateId === user.login || e.actor?.id === user.id);
  const outcomes = mine.map((e) => e.outcome?.result).sort();
  assert.deepEqual(outcomes, ['FAILURE', 'SUCCESS'], `user.session.start events: ${res.text}`);
  assert.doesNotMatch(res.text, new RegExp(PASSWORD), 'no password in the log');
});

test('an unknown user and a wrong password look the same, in body and in time', { timeout: 300_000 }, async (t) => {
  // Real hashing cost, so that skipping the hash for an unknown user would show in the timing.
  slow = await startServer({
    settings: {
      'password.argon2_memory_kib': 19456,
      'password.argon2_iterations': 2,
      'authn.lockout_threshold': 100,
    },
  });
  const api = tenantApi(slow);
  // Every attempt uses a username not tried before: repeated failures on one username are
  // held back by the progressive delay, which would hide the hashing time being compared.
  const tries = 12;
  const users = [];
  for (let i = 0; i < tries + 1; i += 1) users.push(await createUser(api));
  const unknown = (i) => `nobody.${i}.${Date.now()}@example.com`;

  const timed = async (username) => {
    const started = process.hrtime.bigint();
    const res = await signIn(api, username, WRONG_PASSWORD);
    return { res, ms: Number(process.hrtime.bigint() - started) / 1e6 };
  };
  await timed(unknown('warm')); // warm-up
  await timed(users[tries].login);

  const unknownMs = [];
  const wrongMs = [];
  for (let i = 0; i < tries; i += 1) {
    const a = await timed(unknown(i));
    const b = await timed(users[i].login);
    assert.equal(a.res.status, 401, a.res.text);
    assert.equal(b.res.status, 401, b.res.text);
    assert.deepEqual(withoutErrorId(a.res.json), withoutErrorId(b.res.json));
    assert.equal(a.res.json.errorCode, 'E0000004');
    assert.deepEqual(
      [...a.res.headers.keys()].sort(),
      [...b.res.headers.keys()].sort(),
      'same response headers',
    );
    unknownMs.push(a.ms);
    wrongMs.push(b.ms);
  }
  // A request refused before any hashing, for scale.
  const plainMs = [];
  for (let i = 0; i < tries; i += 1) {
    const started = process.hrtime.bigint();
    const res = await api('POST', '/api/v1/authn', { token: null, raw: '{' });
    plainMs.push(Number(process.hrtime.bigint() - started) / 1e6);
    assert.equal(res.status, 400, res.text);
  }
  const median = (xs) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
  const ratio = median(unknownMs) / median(wrongMs);
  t.diagnostic(
    `median ms: unknown user ${median(unknownMs).toFixed(1)}, wrong password ` +
      `${median(wrongMs).toFixed(1)}, no hashing ${median(plainMs).toFixed(1)}`,
  );
  // Without that, the comparison below could not tell a skipped hash from a done one.
  assert.ok(
    median(wrongMs) > 3 * median(plainMs),
    'checking a wrong password must take clearly longer than a request that hashes nothing',
  );
  // Generous bounds: a loaded machine skews single runs, while a skipped hash for unknown users
  // shows as a ratio near 0.05 here.
  assert.ok(
    ratio > 1 / 3 && ratio < 3,
    `median unknown-user ${median(unknownMs).toFixed(1)} ms vs wrong-password ` +
      `${median(wrongMs).toFixed(1)} ms (ratio ${ratio.toFixed(2)})`,
  );
  // One wrong guess each did not lock anyone.
  assert.equal((await api('GET', `/api/v1/users/${users[0].id}`)).json.status, 'ACTIVE');
});

test('suspended users cannot sign in until unsuspended', async () => {
  const api = tenantApi(fast);
  const user = await createUser(api);
  const suspend = await api('POST', `/api/v1/users/${user.id}/lifecycle/suspend`);
  assert.equal(suspend.status, 200, suspend.text);
  assert.equal((await api('GET', `/api/v1/users/${user.id}`)).json.status, 'SUSPENDED');
  const refused = await signIn(api, user.login, PASSWORD);
  assert.equal(refused.status, 401, refused.text);
  assert.equal(refused.json.errorCode, 'E0000004');
  // Suspending twice is refused: only an ACTIVE user can be suspended.
  const again = await api('POST', `/api/v1/users/${user.id}/lifecycle/suspend`);
  assert.equal(again.status, 400, again.text);
  assert.equal(again.json.errorCode, 'E0000001');
  const unsuspend = await api('POST', `/api/v1/users/${user.id}/lifecycle/unsuspend`);
  assert.equal(unsuspend.status, 200, unsuspend.text);
  assert.equal((await signIn(api, user.login, PASSWORD)).json.status, 'SUCCESS');
});

test('password recovery: reset link, recovery token, new password; the old one stops working', async () => {
  const api = tenantApi(fast);
  const user = await createUser(api);
  const reset = await api('POST', `/api/v1/users/${user.id}/lifecycle/reset_password?sendEmail=false`);
  assert.equal(reset.status, 200, reset.text);
  const url = reset.json.resetPasswordUrl ?? '';
  assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/t\/acme\//, reset.text);
  // The token travels in the fragment, never in the path or query a server would log.
  const recoveryToken = new URL(url).hash.replace(/^#token=/, '');
  assert.match(recoveryToken, /^\S{16,}$/);
  assert.equal(recoveryToken, reset.json.resetPasswordToken);
  assert.ok(!new URL(url).pathname.includes(recoveryToken));
  assert.equal((await api('GET', `/api/v1/users/${user.id}`)).json.status, 'RECOVERY');

  const state = await api('POST', '/api/v1/authn/recovery/token', {
    token: null,
    body: { recoveryToken },
  });
  assert.equal(state.status, 200, state.text);
  assert.equal(state.json.status, 'PASSWORD_RESET');
  const stateToken = state.json.stateToken;

  // A password that breaks the policy is refused, and the state token stays usable.
  const weak = await api('POST', '/api/v1/authn/credentials/reset_password', {
    token: null,
    body: { stateToken, newPassword: 'short' },
  });
  assert.equal(weak.status, 400, weak.text);
  assert.equal(weak.json.errorCode, 'E0000080');

  const NEW_PASSWORD = 'cinder-Maple-Falcon-404';
  const done = await api('POST', '/api/v1/authn/credentials/reset_password', {
    token: null,
    body: { stateToken, newPassword: NEW_PASSWORD },
  });
  assert.equal(done.status, 200, done.text);
  assert.equal(done.json.status, 'SUCCESS');
  assert.equal((await api('GET', `/api/v1/users/${user.id}`)).json.status, 'ACTIVE');
  assert.equal((await signIn(api, user.login, PASSWORD)).status, 401);
  assert.equal((await signIn(api, user.login, NEW_PASSWORD)).json.status, 'SUCCESS');

  // The recovery token was good for one use.
  const reused = await api('POST', '/api/v1/authn/recovery/token', {
    token: null,
    body: { recoveryToken },
  });
  assert.equal(reused.status, 401, reused.text);
  assert.equal(reused.json.errorCode, 'E0000011');
});

test('an admin verifies a code, deletes a factor, and reset_factors removes them all', { timeout: 180_000 }, async () => {
  const api = tenantApi(fast);
  const user = await createUser(api);
  const enroll = async () => {
    const res = await api('POST', `/api/v1/users/${user.id}/factors`, {
      body: { factorType: 'token:software:totp', provider: 'GOOGLE' },
    });
    assert.equal(res.status, 200, res.text);
    const secret = res.json._embedded.activation.sharedSecret;
    const step = stepOf(Date.now());
    const act = await api('POST', `/api/v1/users/${user.id}/factors/${res.json.id}/lifecycle/activate`, {
      body: { passCode: authenticator.generate(secret) },
    });
    assert.equal(act.status, 200, act.text);
    return { id: res.json.id, secret, step };
  };

  const factor = await enroll();
  await waitForStepAfter(factor.step);
  const verify = await api('POST', `/api/v1/users/${user.id}/factors/${factor.id}/verify`, {
    body: { passCode: authenticator.generate(factor.secret) },
  });
  assert.equal(verify.status, 200, verify.text);
  assert.equal(verify.json.factorResult, 'SUCCESS');
  const wrong = await api('POST', `/api/v1/users/${user.id}/factors/${factor.id}/verify`, {
    body: { passCode: 'abcdef' },
  });
  assert.equal(wrong.status, 403, wrong.text);
  assert.equal(wrong.json.errorCode, 'E0000068');

  const del = await api('DELETE', `/api/v1/users/${user.id}/factors/${factor.id}`);
  assert.equal(del.status, 204, del.text);
  assert.deepEqual((await api('GET', `/api/v1/users/${user.id}/factors`)).json, []);
  // Without a factor, the password alone signs in again.
  assert.equal((await signIn(api, user.login, PASSWORD)).json.status, 'SUCCESS');

  await enroll();
  assert.equal((await signIn(api, user.login, PASSWORD)).json.status, 'MFA_REQUIRED');
  const resetFactors = await api('POST', `/api/v1/users/${user.id}/lifecycle/reset_factors`);
  assert.equal(resetFactors.status, 200, resetFactors.text);
  assert.deepEqual((await api('GET', `/api/v1/users/${user.id}/factors`)).json, []);
  assert.equal((await signIn(api, user.login, PASSWORD)).json.status, 'SUCCESS');
});

test('sign-ins beyond the per-address rate limit get 429 and are not processed', async () => {
  limited = await startServer({ signInRateLimit: true });
  const api = tenantApi(limited);
  const eventCount = async () => (await sqlRows(limited, 'SELECT COUNT(*) AS n FROM events'))[0].n;
  const before = await eventCount();
  const started = Date.now();
  // Distinct unknown usernames: no progressive delay, and one failure event per attempt that is
  // processed.
  const statuses = [];
  let refused;
  for (let i = 0; i < 200 && statuses.filter((s) => s === 429).length < 5; i += 1) {
    const res = await signIn(api, `nobody.${i}.${Date.now()}@example.com`, WRONG_PASSWORD);
    assert.ok([401, 429].includes(res.status), res.text);
    statuses.push(res.status);
    if (res.status === 429) refused ??= res;
  }
  const seconds = (Date.now() - started) / 1000;
  const processed = statuses.filter((s) => s === 401).length;
  assert.ok(refused, `no 429 in ${statuses.length} sign-ins`);
  // The whole burst first; after it, no more than the rate refilled meanwhile.
  assert.deepEqual(statuses.slice(0, 20), Array(20).fill(401));
  assert.ok(
    processed <= 20 + Math.ceil(seconds * 10) + 1,
    `${processed} sign-ins processed in ${seconds.toFixed(2)} s`,
  );

  assert.equal(refused.json.errorCode, 'E0000047');
  assert.equal(refused.json.errorSummary, 'API call exceeded rate limit due to too many requests.');
  assert.equal(refused.json.errorId, `oae${refused.headers.get('x-request-id')}`);
  assert.match(refused.headers.get('retry-after') ?? '', /^[1-9]\d*$/);
  assert.equal(refused.headers.get('x-rate-limit-limit'), '20');
  assert.equal(refused.headers.get('x-rate-limit-remaining'), '0');
  // What Okta's SDKs read to wait before retrying: the reset time against the Date header.
  const reset = Number(refused.headers.get('x-rate-limit-reset'));
  const date = Date.parse(refused.headers.get('date') ?? '') / 1000;
  assert.ok(Number.isFinite(date), `Date header: ${refused.headers.get('date')}`);
  assert.ok(reset >= date && reset <= date + 2, `X-Rate-Limit-Reset ${reset}, Date ${date}`);

  // Refused attempts never reached the sign-in code: only the processed ones wrote an event.
  assert.equal((await eventCount()) - before, processed);

  // Other routes are not limited, and once Retry-After has passed sign-in works again.
  const users = await api('GET', '/api/v1/users?limit=1');
  assert.equal(users.status, 200, users.text);
  await sleep(Number(refused.headers.get('retry-after')) * 1000);
  const again = await signIn(api, `nobody.again.${Date.now()}@example.com`, WRONG_PASSWORD);
  assert.equal(again.status, 401, again.text);
});
