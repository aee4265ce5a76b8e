// Bad input to the support plane: DPoP proofs that are forged, replayed, expired or made for
// another request; tokens of one tenant used on another; approvals by non-admins; approving an
// expired request; and guarded actions without a grant naming them or without a tenant admin's
// confirmation. Each is refused with a clear reason and changes nothing.

import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import { request, runAdmin, serverTest, sleep, startServer } from './lib/server.mjs';
import {
  createOperator, createVendor, dpopProof, enrollDevice, operatorCall, operatorToken,
  providerAdmin, signInOperator, tenantEvents,
} from './lib/support.mjs';

let server; // default lifetimes
let brief; // pending access requests expire after one second
let watchful; // anomaly rules: more than one tenant suspends the operator
const test = serverTest(() => [server, brief, watchful]);

let admin;
let op; // { key, token, operator, device }

before(async () => {
  server = await startServer({ tenants: ['acme', 'globex'] });
  admin = await providerAdmin(server);
  const vendor = await createVendor(admin, { name: 'Contoso Help', country: 'IE' });
  const operator = await createOperator(admin, vendor, { login: 'liam@contoso.example' });
  const device = await enrollDevice(server, admin, vendor, { name: 'contoso-17' });
  const session = await signInOperator(server, operator);
  const issued = await operatorToken(server, device.key, session);
  assert.equal(issued.status, 200, JSON.stringify(issued.json));
  op = { key: device.key, token: issued.json.access_token, operator, device };
});

after(async () => {
  for (const s of [server, brief, watchful]) {
    if (!s) continue;
    const status = await s.stop();
    assert.equal(status.code, 0, `custos exit status after SIGTERM: ${JSON.stringify(status)}`);
  }
});

const tenantCall = (srv, name, token = srv.tenant(name).token) => (method, p, opts = {}) =>
  request(`${srv.baseUrl}/t/${name}/api/v1${p}`, { method, token, ...opts });

async function grantFor(srv, o, tenant, scope) {
  const adminCall = tenantCall(srv, tenant);
  const opened = await adminCall('POST', '/support/cases', { body: { subject: 'help' } });
  assert.equal(opened.status, 201, opened.text);
  const asked = await operatorCall(srv, o.key, o.token, 'POST', '/provider/api/v1/support/access_requests', {
    body: { tenant, caseId: opened.json.id, justification: 'CUSTOMER_INITIATED_SUPPORT', scope },
  });
  assert.equal(asked.status, 201, asked.text);
  const approved = await adminCall('POST', `/support/access_requests/${asked.json.id}/approve`, { body: {} });
  assert.equal(approved.status, 200, approved.text);
  return approved.json.grant;
}

test('forged, replayed, expired and misdirected DPoP proofs are refused with their reason', async () => {
  await grantFor(server, op, 'acme', ['read']);
  const path = '/provider/api/v1/support/tenants/acme/users';
  const url = server.baseUrl + path;
  const viewsBefore = (await tenantEvents(server, 'acme', server.tenant('acme').token, ['support.view'])).length;

  const valid = await dpopProof(op.key, 'GET', url, { accessToken: op.token });
  const [h, p, sig] = valid.split('.');
  const flipped = sig[5] === 'A' ? 'B' : 'A';
  const forged = `${h}.${p}.${sig.slice(0, 5)}${flipped}${sig.slice(6)}`;
  const cases = [
    ['forged signature', forged, 'dpop_bad_signature'],
    ['expired (iat ten minutes ago)', await dpopProof(op.key, 'GET', url, { accessToken: op.token, overrides: { iat: Math.floor(Date.now() / 1000) - 600 } }), 'dpop_iat_too_old'],
    ['from the future', await dpopProof(op.key, 'GET', url, { accessToken: op.token, overrides: { iat: Math.floor(Date.now() / 1000) + 600 } }), 'dpop_iat_in_future'],
    ['for another URL', await dpopProof(op.key, 'GET', `${server.baseUrl}/provider/api/v1/support/tenants/globex/users`, { accessToken: op.token }), 'dpop_htu_mismatch'],
    ['for another method', await dpopProof(op.key, 'POST', url, { accessToken: op.token }), 'dpop_htm_mismatch'],
    ['for another token', await dpopProof(op.key, 'GET', url, { accessToken: `${op.token}x` }), 'dpop_ath_mismatch'],
    ['without ath', await dpopProof(op.key, 'GET', url), 'dpop_ath_missing'],
    ['of another type', await dpopProof(op.key, 'GET', url, { accessToken: op.token, header: { typ: 'JWT' } }), 'dpop_bad_typ'],
    ['not a JWT', 'not-a-proof', 'dpop_malformed'],
  ];
  for (const [what, proof, reason] of cases) {
    const res = await operatorCall(server, op.key, op.token, 'GET', path, { proof });
    assert.equal(res.status, 401, `${what}: ${res.text}`);
    assert.equal(res.json.reason, reason, what);
    assert.equal(res.json.errorCode, 'E0000011', what);
    assert.match(res.headers.get('www-authenticate'), /^DPoP error="invalid_dpop_proof"/, what);
  }

  // A valid proof works once; the same proof again is a replay.
  const once = await operatorCall(server, op.key, op.token, 'GET', path, { proof: valid });
  assert.equal(once.status, 200, once.text);
  const twice = await operatorCall(server, op.key, op.token, 'GET', path, { proof: valid });
  assert.equal(twice.status, 401, twice.text);
  assert.equal(twice.json.reason, 'dpop_replayed');

  // Nothing was shown but the one allowed view; every refusal is in the provider log.
  const viewsAfter = (await tenantEvents(server, 'acme', server.tenant('acme').token, ['support.view'])).length;
  assert.equal(viewsAfter, viewsBefore + 1);
  const denials = await tenantEvents(server, 'provider', admin.token, ['support.gate.deny']);
  for (const [, , reason] of [...cases, [null, null, 'dpop_replayed']]) {
    assert.ok(denials.some((e) => e.outcome.reason === reason), `provider log has a ${reason} refusal`);
  }
});

test('credentials of one tenant or plane are refused on another', async () => {
  const acmeToken = server.tenant('acme').token;
  const cross = await tenantCall(server, 'globex', acmeToken)('GET', '/support/access_requests');
  assert.equal(cross.status, 401, cross.text);
  assert.equal(cross.json.errorCode, 'E0000011');
  const tenantOnProvider = await request(`${server.baseUrl}/provider/api/v1/vendors`, { token: acmeToken });
  assert.equal(tenantOnProvider.status, 401, tenantOnProvider.text);
  const providerOnTenant = await tenantCall(server, 'acme', admin.token)('GET', '/support/policy');
  assert.equal(providerOnTenant.status, 401, providerOnTenant.text);
  // An operator token is not an admin credential of a tenant...
  const opOnTenant = await request(`${server.baseUrl}/t/acme/api/v1/support/access_requests`, {
    headers: { Authorization: `DPoP ${op.token}`, DPoP: await dpopProof(op.key, 'GET', `${server.baseUrl}/t/acme/api/v1/support/access_requests`, { accessToken: op.token }) },
  });
  assert.equal(opOnTenant.status, 401, opOnTenant.text);
  // ...and an API token is not an operator token.
  const ssws = await request(`${server.baseUrl}/provider/api/v1/support/tenants/acme/users`, { token: acmeToken });
  assert.equal(ssws.status, 401, ssws.text);
  assert.equal(ssws.json.reason, 'dpop_scheme_required');
});

test('approvals by non-admins are refused and change nothing', async () => {
  const readToken = await runAdmin(['create-api-token', '--tenant', 'globex', '--data-dir', server.dataDir, '--name', 'auditor', '--scope', 'log.read']);
  const globexAdmin = tenantCall(server, 'globex');
  const opened = await globexAdmin('POST', '/support/cases', { body: { subject: 'sso broken' } });
  const asked = await operatorCall(server, op.key, op.token, 'POST', '/provider/api/v1/support/access_requests', {
    body: { tenant: 'globex', caseId: opened.json.id, justification: 'CUSTOMER_INITIATED_SUPPORT', scope: ['read'] },
  });
  assert.equal(asked.status, 201, asked.text);
  const byReader = await tenantCall(server, 'globex', readToken)('POST', `/support/access_requests/${asked.json.id}/approve`, { body: {} });
  assert.equal(byReader.status, 403, byReader.text);
  assert.equal(byReader.json.errorCode, 'E0000006');
  const byOtherTenant = await tenantCall(server, 'globex', server.tenant('acme').token)('POST', `/support/access_requests/${asked.json.id}/approve`, { body: {} });
  assert.equal(byOtherTenant.status, 401, byOtherTenant.text);
  const byOperator = await request(`${server.baseUrl}/t/globex/api/v1/support/access_requests/${asked.json.id}/approve`, {
    method: 'POST', body: {}, headers: { Authorization: `DPoP ${op.token}` },
  });
  assert.equal(byOperator.status, 401, byOperator.text);
  const still = await globexAdmin('GET', `/support/access_requests/${asked.json.id}`);
  assert.equal(still.json.status, 'PENDING');
  assert.equal(still.json.grant ?? null, null);
  const grants = await globexAdmin('GET', '/support/grants');
  assert.deepEqual(grants.json, []);
});

test('bad support requests, policies and durations are refused with what is wrong', async () => {
  const acmeAdmin = tenantCall(server, 'acme');
  const opened = await acmeAdmin('POST', '/support/cases', { body: { subject: 'x' } });
  const ask = (body) => operatorCall(server, op.key, op.token, 'POST', '/provider/api/v1/support/access_requests', { body });
  const base = { tenant: 'acme', caseId: opened.json.id, justification: 'CUSTOMER_INITIATED_SUPPORT', scope: ['read'] };
  const bad = [
    [{ ...base, justification: 'BECAUSE' }, 400],
    [{ ...base, scope: [] }, 400],
    [{ ...base, scope: ['read', 'delete_everything'] }, 400],
    [{ ...base, scope: ['read', 'read'] }, 400],
    [{ ...base, duration: '25h' }, 400],
    [{ ...base, duration: 'soon' }, 400],
    [{ ...base, extra: 1 }, 400],
    [{ ...base, caseId: 'cas00000000000000000' }, 404],
    [{ ...base, tenant: 'no-such-tenant' }, 404],
  ];
  const before = (await acmeAdmin('GET', '/support/access_requests')).json.length;
  for (const [body, status] of bad) {
    const res = await ask(body);
    assert.equal(res.status, status, `${JSON.stringify(body)}: ${res.text}`);
    assert.ok(res.json.errorSummary, res.text);
  }
  assert.equal((await acmeAdmin('GET', '/support/access_requests')).json.length, before);

  for (const body of [{ policy: 'sometimes' }, { policy: 1 }, {}, { policy: 'blocked', more: true }]) {
    const res = await acmeAdmin('PUT', '/support/policy', { body });
    assert.equal(res.status, 400, `${JSON.stringify(body)}: ${res.text}`);
  }
  assert.equal((await acmeAdmin('GET', '/support/policy')).json.policy, 'approval_required');
  const extend = await acmeAdmin('POST', '/support/grants/sgr00000000000000000/extend', { body: { duration: '1h' } });
  assert.equal(extend.status, 404, extend.text);
  const badExtend = await acmeAdmin('POST', '/support/grants/sgr00000000000000000/extend', { body: { duration: '-1h' } });
  assert.equal(badExtend.status, 400, badExtend.text);
});

test('a blocked tenant refuses requests; auto-approval covers only read access to cases the tenant opened', async () => {
  const globexAdmin = tenantCall(server, 'globex');
  const opened = await globexAdmin('POST', '/support/cases', { body: { subject: 'locked out' } });
  const ask = (scope, caseId = opened.json.id) => operatorCall(server, op.key, op.token, 'POST', '/provider/api/v1/support/access_requests', {
    body: { tenant: 'globex', caseId, justification: 'CUSTOMER_INITIATED_SUPPORT', scope },
  });
  assert.equal((await globexAdmin('PUT', '/support/policy', { body: { policy: 'blocked' } })).status, 200);
  const blocked = await ask(['read']);
  assert.equal(blocked.status, 403, blocked.text);
  assert.equal(blocked.json.reason, 'policy_blocked');
  const blockedCase = await operatorCall(server, op.key, op.token, 'POST', '/provider/api/v1/support/cases', { body: { tenant: 'globex', subject: 'let me in' } });
  assert.equal(blockedCase.status, 403, blockedCase.text);
  assert.equal(blockedCase.json.reason, 'policy_blocked');

  assert.equal((await globexAdmin('PUT', '/support/policy', { body: { policy: 'auto_approve_read' } })).status, 200);
  const auto = await ask(['read']);
  assert.equal(auto.status, 201, auto.text);
  assert.equal(auto.json.status, 'APPROVED');
  assert.equal(auto.json.decidedBy, 'policy');
  const withReset = await ask(['read', 'password_reset']);
  assert.equal(withReset.json.status, 'PENDING', 'a guarded action is never auto-approved');
  const providerCase = await operatorCall(server, op.key, op.token, 'POST', '/provider/api/v1/support/cases', { body: { tenant: 'globex', subject: 'proactive review' } });
  assert.equal(providerCase.status, 201, providerCase.text);
  const review = await ask(['read'], providerCase.json.id);
  assert.equal(review.json.status, 'PENDING', 'a case the provider opened needs an admin');
  assert.equal((await globexAdmin('PUT', '/support/policy', { body: { policy: 'approval_required' } })).status, 200);
});

test('a guarded action needs a grant naming it and a tenant admin confirmation, once', async () => {
  const acmeAdmin = tenantCall(server, 'acme');
  const created = await acmeAdmin('POST', '/users?activate=true', {
    body: { profile: { firstName: 'Kim', lastName: 'Lee', email: 'kim@acme.example', login: 'kim@acme.example' }, credentials: { password: { value: 'plaster-Orbit-Violet-42' } } },
  });
  assert.equal(created.status, 200, created.text);
  const userId = created.json.id;
  await grantFor(server, op, 'acme', ['read', 'password_reset']);
  const reset = () => operatorCall(server, op.key, op.token, 'POST', `/provider/api/v1/support/tenants/acme/users/${userId}/lifecycle/reset_password`);

  const first = await reset();
  assert.equal(first.status, 403, first.text);
  assert.equal(first.json.reason, 'confirmation_required');
  const confirmationId = first.json.confirmationId;
  assert.match(confirmationId, /^scf/);
  const again = await reset();
  assert.equal(again.json.confirmationId, confirmationId, 'one pending confirmation per action and target');
  assert.equal((await acmeAdmin('GET', `/users/${userId}`)).json.status, 'ACTIVE');

  const pending = await acmeAdmin('GET', '/support/confirmations?status=PENDING');
  assert.ok(pending.json.some((c) => c.id === confirmationId && c.action === 'password_reset' && c.target === userId), pending.text);
  const readToken = await runAdmin(['create-api-token', '--tenant', 'acme', '--data-dir', server.dataDir, '--name', 'reader', '--scope', 'log.read']);
  const byReader = await tenantCall(server, 'acme', readToken)('POST', `/support/confirmations/${confirmationId}/confirm`);
  assert.equal(byReader.status, 403, byReader.text);
  const confirmed = await acmeAdmin('POST', `/support/confirmations/${confirmationId}/confirm`);
  assert.equal(confirmed.status, 200, confirmed.text);
  assert.equal(confirmed.json.status, 'CONFIRMED');

  const done = await reset();
  assert.equal(done.status, 200, done.text);
  assert.equal(done.json.status, 'RECOVERY');
  assert.doesNotMatch(done.text, /token/i, 'the reset token goes to the user, not to support');
  const third = await reset();
  assert.equal(third.status, 403, 'a confirmation is used once');
  assert.equal(third.json.reason, 'confirmation_required');

  // No confirmation is asked for a user who does not exist, and logins cannot be probed.
  const ghost = await operatorCall(server, op.key, op.token, 'POST', '/provider/api/v1/support/tenants/acme/users/00u0000000000000ghost/lifecycle/reset_password');
  assert.equal(ghost.status, 404, ghost.text);
  assert.equal(ghost.json.confirmationId, undefined);
  const byLogin = await operatorCall(server, op.key, op.token, 'GET', '/provider/api/v1/support/tenants/acme/users/kim@acme.example');
  assert.equal(byLogin.status, 404, byLogin.text);
  const confirmations = (await acmeAdmin('GET', '/support/confirmations')).json;
  assert.ok(!confirmations.some((c) => c.target.includes('ghost')), JSON.stringify(confirmations));
  const misses = await tenantEvents(server, 'acme', server.tenant('acme').token, ['support.view', 'support.action.refused']);
  assert.ok(misses.some((e) => e.eventType === 'support.view' && e.outcome.result === 'FAILURE' && e.outcome.reason === 'not_found'), 'the failed lookup is recorded');
  assert.ok(misses.some((e) => e.eventType === 'support.action.refused' && e.outcome.reason === 'target_not_found'), 'the refused reset is recorded');

  // MFA reset was not in the grant.
  const mfa = await operatorCall(server, op.key, op.token, 'POST', `/provider/api/v1/support/tenants/acme/users/${userId}/lifecycle/reset_factors`);
  assert.equal(mfa.status, 403, mfa.text);
  assert.equal(mfa.json.reason, 'scope_missing');

  const events = await tenantEvents(server, 'acme', server.tenant('acme').token);
  const types = events.map((e) => e.eventType);
  for (const type of ['support.confirmation.request', 'support.confirmation.confirm', 'support.action.refused', 'support.action.success']) {
    assert.ok(types.includes(type), `acme log has ${type}`);
  }
  const success = events.find((e) => e.eventType === 'support.action.success');
  assert.equal(success.debugContext.debugData.action, 'password_reset');
  assert.equal(success.debugContext.debugData.operatorId, op.operator.userId);
});

test('approving a request after it expired is refused and changes nothing', async () => {
  brief = await startServer({ tenants: ['acme'], settings: { 'support.access_request_lifetime': '1s' } });
  const a = await providerAdmin(brief);
  const vendor = await createVendor(a, { name: 'Brief Vendor' });
  const operator = await createOperator(a, vendor, { login: 'ivy@brief.example' });
  const device = await enrollDevice(brief, a, vendor, { name: 'brief-1' });
  const issued = await operatorToken(brief, device.key, await signInOperator(brief, operator));
  const o = { key: device.key, token: issued.json.access_token };
  const acmeAdmin = tenantCall(brief, 'acme');
  const opened = await acmeAdmin('POST', '/support/cases', { body: { subject: 'late' } });
  const asked = await operatorCall(brief, o.key, o.token, 'POST', '/provider/api/v1/support/access_requests', {
    body: { tenant: 'acme', caseId: opened.json.id, justification: 'CUSTOMER_INITIATED_SUPPORT', scope: ['read'] },
  });
  assert.equal(asked.status, 201, asked.text);
  await sleep(1500);
  const late = await acmeAdmin('POST', `/support/access_requests/${asked.json.id}/approve`, { body: {} });
  assert.equal(late.status, 403, late.text);
  assert.equal(late.json.reason, 'request_expired');
  const after = await acmeAdmin('GET', `/support/access_requests/${asked.json.id}`);
  assert.notEqual(after.json.status, 'APPROVED');
  assert.deepEqual((await acmeAdmin('GET', '/support/grants')).json, []);
  const view = await operatorCall(brief, o.key, o.token, 'GET', '/provider/api/v1/support/tenants/acme/users');
  assert.equal(view.status, 403);
  assert.equal(view.json.reason, 'no_grant');
  const refused = await tenantEvents(brief, 'acme', brief.tenant('acme').token, ['support.access.approve']);
  assert.equal(refused.length, 1);
  assert.equal(refused[0].outcome.result, 'FAILURE');
});

test('a locked device and stale posture are refused until fixed', async () => {
  await grantFor(server, op, 'acme', ['read']);
  const view = () => operatorCall(server, op.key, op.token, 'GET', '/provider/api/v1/support/tenants/acme/groups');
  assert.equal((await view()).status, 200);
  const locked = await admin.api('POST', `/provider/api/v1/devices/${op.device.id}/lifecycle/lock`);
  assert.equal(locked.status, 200, locked.text);
  assert.equal(locked.json.status, 'LOCKED');
  const whileLocked = await view();
  assert.equal(whileLocked.status, 401, whileLocked.text);
  assert.equal(whileLocked.json.reason, 'device_locked');
  assert.equal((await admin.api('POST', `/provider/api/v1/devices/${op.device.id}/lifecycle/unlock`)).status, 200);
  assert.equal((await view()).status, 200);

  const policy = await admin.api('GET', '/provider/api/v1/devices/policy');
  assert.equal(policy.status, 200, policy.text);
  const badPolicy = await admin.api('PUT', '/provider/api/v1/devices/policy', { body: { requiredSignals: ['antivirus_vibes'] } });
  assert.equal(badPolicy.status, 400, badPolicy.text);
  const strict = await admin.api('PUT', '/provider/api/v1/devices/policy', { body: { maxPostureAge: '1s' } });
  assert.equal(strict.status, 200, strict.text);
  await sleep(2100);
  const stale = await view();
  assert.equal(stale.status, 401, stale.text);
  assert.equal(stale.json.reason, 'device_noncompliant');
  assert.match(stale.json.errorSummary, /posture_stale/);
  assert.equal((await admin.api('PUT', '/provider/api/v1/devices/policy', { body: policy.json })).status, 200);
  assert.equal((await view()).status, 200);
  const listed = await admin.api('GET', '/provider/api/v1/devices');
  assert.ok(listed.json.some((d) => d.id === op.device.id && d.compliance.compliant), listed.text);
});

test('an operator reaching more tenants than the rule allows raises an alert and is suspended', async () => {
  watchful = await startServer({
    tenants: ['acme', 'globex'],
    settings: { 'support.anomaly_max_tenants': 1, 'support.anomaly_suspend_operator': true },
  });
  const a = await providerAdmin(watchful);
  const vendor = await createVendor(a, { name: 'Spread Vendor' });
  const operator = await createOperator(a, vendor, { login: 'max@spread.example' });
  const device = await enrollDevice(watchful, a, vendor, { name: 'spread-1' });
  const issued = await operatorToken(watchful, device.key, await signInOperator(watchful, operator));
  const o = { key: device.key, token: issued.json.access_token };
  await grantFor(watchful, o, 'acme', ['read']);
  await grantFor(watchful, o, 'globex', ['read']);
  const first = await operatorCall(watchful, o.key, o.token, 'GET', '/provider/api/v1/support/tenants/acme/users');
  assert.equal(first.status, 200, first.text);
  const second = await operatorCall(watchful, o.key, o.token, 'GET', '/provider/api/v1/support/tenants/globex/users');
  assert.equal(second.status, 403, second.text);
  assert.equal(second.json.reason, 'operator_suspended');
  const after = await operatorCall(watchful, o.key, o.token, 'GET', '/provider/api/v1/support/tenants/acme/users');
  assert.equal(after.status, 401, after.text);
  const alerts = await tenantEvents(watchful, 'provider', a.token, ['support.anomaly.alert']);
  assert.equal(alerts.length, 1, JSON.stringify(alerts));
  assert.equal(alerts[0].debugContext.debugData.rule, 'tenant_spread');
  const suspended = await tenantEvents(watchful, 'provider', a.token, ['support.operator.suspend']);
  assert.equal(suspended.length, 1);
  assert.equal((await a.api('GET', `/provider/api/v1/operators/${operator.userId}`)).json.status, 'SUSPENDED');
});

test('tenant admins extend and revoke grants and close cases, and access ends at once', async () => {
  const acmeAdmin = tenantCall(server, 'acme');
  const path = '/provider/api/v1/support/tenants/acme/groups';
  const view = () => operatorCall(server, op.key, op.token, 'GET', path);
  // End whatever earlier tests granted in acme, so that only this test's grant counts.
  for (const g of (await acmeAdmin('GET', '/support/grants?status=ACTIVE')).json) {
    assert.equal((await acmeAdmin('POST', `/support/grants/${g.id}/revoke`, { body: {} })).status, 200);
  }
  assert.equal((await view()).status, 403);

  const grant = await grantFor(server, op, 'acme', ['read']);
  assert.equal((await view()).status, 200);
  const extended = await acmeAdmin('POST', `/support/grants/${grant.id}/extend`, { body: { duration: '2h' } });
  assert.equal(extended.status, 200, extended.text);
  assert.ok(Date.parse(extended.json.expiresAt) > Date.parse(grant.expiresAt));
  const capped = await acmeAdmin('POST', `/support/grants/${grant.id}/extend`, { body: { duration: '100h' } });
  assert.equal(capped.status, 200, capped.text);
  assert.ok(Date.parse(capped.json.expiresAt) <= Date.now() + 24 * 3600_000 + 5000, 'never past 24 h from now');

  const revoked = await acmeAdmin('POST', `/support/grants/${grant.id}/revoke`, { body: { reason: 'done' } });
  assert.equal(revoked.status, 200, revoked.text);
  assert.equal(revoked.json.status, 'REVOKED');
  const afterRevoke = await view();
  assert.equal(afterRevoke.status, 403, afterRevoke.text);
  const again = await acmeAdmin('POST', `/support/grants/${grant.id}/revoke`, { body: {} });
  assert.equal(again.status, 403, again.text);

  const second = await grantFor(server, op, 'acme', ['read']);
  assert.equal((await view()).status, 200);
  const closed = await acmeAdmin('POST', `/support/cases/${second.caseId}/close`);
  assert.equal(closed.status, 200, closed.text);
  assert.equal(closed.json.status, 'CLOSED');
  assert.equal((await view()).status, 403);
  const ended = (await acmeAdmin('GET', '/support/grants')).json.find((g) => g.id === second.id);
  assert.equal(ended.status, 'ENDED');
  assert.equal(ended.endReason, 'case_closed');
  const events = await tenantEvents(server, 'acme', server.tenant('acme').token);
  for (const type of ['user.session.impersonation.extend', 'user.session.impersonation.revoke', 'user.session.impersonation.end', 'support.case.close']) {
    assert.ok(events.some((e) => e.eventType === type), `acme log has ${type}`);
  }
});
