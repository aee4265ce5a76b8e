// The support access plane end to end: a contractor's operator works from a managed device with
// customer-approved, read-only grants for two tenants; the workstation is taken over (its device
// key and the operator's session are in the attacker's hands), and everything the attacker does
// is either confined to the two grants, in redacted form, or refused — and every step is in the
// right System Logs. Then the vendor kill switch ends it all.

import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import { request, serverTest, sleep, startServer } from './lib/server.mjs';
import {
  createOperator, createVendor, dpopProof, enrollDevice, operatorCall, operatorToken,
  providerAdmin, runDevice, signInOperator, strangerKey, tenantEvents,
} from './lib/support.mjs';

let server;
const test = serverTest(() => server);

const TENANTS = ['acme', 'globex', 'initech', 'umbrella'];

before(async () => {
  server = await startServer({
    tenants: TENANTS,
    // The scenario's operator reaches four tenants; the spread rule is tested on its own below.
    settings: { 'support.anomaly_max_tenants': 10 },
  });
});

after(async () => {
  const status = await server.stop();
  assert.equal(status.code, 0, `custos exit status after SIGTERM: ${JSON.stringify(status)}`);
});

const tenantCall = (name) => (method, p, opts = {}) =>
  request(`${server.baseUrl}/t/${name}/api/v1${p}`, { method, token: server.tenant(name).token, ...opts });

// A tenant admin opens a case; the operator asks for access under it.
async function askAccess(op, tenant, { scope = ['read'], justification = 'CUSTOMER_INITIATED_SUPPORT', duration } = {}) {
  const admin = tenantCall(tenant);
  const opened = await admin('POST', '/support/cases', { body: { subject: `ticket for ${tenant}` } });
  assert.equal(opened.status, 201, opened.text);
  const body = { tenant, caseId: opened.json.id, justification, scope };
  if (duration) body.duration = duration;
  const asked = await operatorCall(server, op.key, op.token, 'POST', '/provider/api/v1/support/access_requests', { body });
  assert.equal(asked.status, 201, asked.text);
  return { caseId: opened.json.id, request: asked.json };
}

async function seedUsers(tenant) {
  const admin = tenantCall(tenant);
  const res = await admin('POST', '/users?activate=false', {
    body: { profile: { firstName: 'Jane', lastName: 'Doe', email: `jane.doe@${tenant}.example`, login: `jane.doe@${tenant}.example`, mobilePhone: '+1 555 0199', employeeNumber: 'E-7731' } },
  });
  assert.equal(res.status, 200, res.text);
  return res.json.id;
}

test('a taken-over workstation reaches only its two granted tenants, redacted, and every reset is refused', { timeout: 180_000 }, async () => {
  const admin = await providerAdmin(server);
  const vendor = await createVendor(admin, { name: 'Northwind Support', employingEntity: 'Northwind BPO S.A.', country: 'CR' });
  const operator = await createOperator(admin, vendor, { login: 'ana.ruiz@northwind.example' });
  const device = await enrollDevice(server, admin, vendor, { name: 'nw-laptop-017' });

  // The operator signs in (password + TOTP) and binds a token to the device key.
  const session = await signInOperator(server, operator);
  const issued = await operatorToken(server, device.key, session);
  assert.equal(issued.status, 200, JSON.stringify(issued.json));
  assert.equal(issued.json.token_type, 'DPoP');
  const op = { key: device.key, token: issued.json.access_token };

  // Scripts on the workstation use `custos device` for the same: a token from the session (read
  // from stdin), then DPoP-signed calls.
  const cliToken = await runDevice(['token', '--dir', device.dir], { input: `${session}\n` });
  assert.equal(cliToken.code, 0, cliToken.stderr);
  assert.doesNotMatch(cliToken.stdout + cliToken.stderr, new RegExp(session), 'the session token is never printed');
  const me = await runDevice(['call', 'GET', '/provider/api/v1/support/me', '--dir', device.dir]);
  assert.equal(me.code, 0, me.stderr);
  const meJson = JSON.parse(me.stdout);
  assert.equal(meJson.operator.login, operator.login);
  assert.equal(meJson.vendor.name, 'Northwind Support');
  assert.equal(meJson.device.id, device.id);
  assert.equal(meJson.device.compliance.compliant, true);
  const shown = await runDevice(['show', '--dir', device.dir]);
  assert.equal(shown.code, 0, shown.stderr);
  assert.match(shown.stdout, new RegExp(device.key.jkt));

  const users = {};
  for (const t of TENANTS) users[t] = await seedUsers(t);

  // Approved read-only grants for acme and globex; initech's grant is approved for one second
  // and lapses; umbrella never granted anything.
  const grants = {};
  for (const t of ['acme', 'globex', 'initech']) {
    const { request: asked } = await askAccess(op, t);
    assert.equal(asked.status, 'PENDING');
    // The approver sees who is asking, for whom they work, and the device's compliance.
    const pending = await tenantCall(t)('GET', '/support/access_requests?status=PENDING');
    assert.equal(pending.status, 200, pending.text);
    const shown = pending.json.find((r) => r.id === asked.id);
    assert.equal(shown.operator.login, operator.login);
    assert.equal(shown.vendor.name, 'Northwind Support');
    assert.equal(shown.vendor.employingEntity, 'Northwind BPO S.A.');
    assert.equal(shown.vendor.country, 'CR');
    assert.equal(shown.device.id, device.id);
    assert.equal(shown.device.compliant, true);
    assert.equal(shown.justification, 'CUSTOMER_INITIATED_SUPPORT');
    const approved = await tenantCall(t)('POST', `/support/access_requests/${asked.id}/approve`, {
      body: { duration: t === 'initech' ? '1s' : '2h' },
    });
    assert.equal(approved.status, 200, approved.text);
    assert.equal(approved.json.status, 'APPROVED');
    grants[t] = approved.json.grant;
  }
  await sleep(1500);

  // ---- From here on the attacker holds the device key and the session. ----
  const attackerSession = session;
  const stolen = await operatorToken(server, device.key, attackerSession);
  assert.equal(stolen.status, 200, JSON.stringify(stolen.json));
  const attacker = { key: device.key, token: stolen.json.access_token };

  // The two granted tenants, redacted: masked e-mail and phone, no custom attributes, no
  // credentials.
  for (const t of ['acme', 'globex']) {
    const list = await operatorCall(server, attacker.key, attacker.token, 'GET', `/provider/api/v1/support/tenants/${t}/users`);
    assert.equal(list.status, 200, list.text);
    const jane = list.json.find((u) => u.id === users[t]);
    assert.ok(jane, list.text);
    assert.equal(jane.profile.email, `j***@${t}.example`);
    assert.equal(jane.profile.mobilePhone, '***99');
    assert.equal(jane.profile.employeeNumber, undefined);
    assert.equal(jane.credentials, undefined);
    assert.doesNotMatch(list.text, /jane\.doe@/);
    const one = await operatorCall(server, attacker.key, attacker.token, 'GET', `/provider/api/v1/support/tenants/${t}/users/${users[t]}`);
    assert.equal(one.status, 200, one.text);
    const factors = await operatorCall(server, attacker.key, attacker.token, 'GET', `/provider/api/v1/support/tenants/${t}/users/${users[t]}/factors`);
    assert.equal(factors.status, 200, factors.text);
  }

  // Tenants without a live grant are refused, each with its reason.
  const refusedViews = [['initech', 'grant_expired'], ['umbrella', 'no_grant']];
  for (const [t, reason] of refusedViews) {
    const res = await operatorCall(server, attacker.key, attacker.token, 'GET', `/provider/api/v1/support/tenants/${t}/users`);
    assert.equal(res.status, 403, res.text);
    assert.equal(res.json.reason, reason);
    assert.doesNotMatch(res.text, /jane/);
  }

  // Every reset and configuration change is refused: the grants are read-only.
  const attempts = [];
  for (const t of TENANTS) {
    attempts.push(['POST', `/provider/api/v1/support/tenants/${t}/users/${users[t]}/lifecycle/reset_password`, undefined, t]);
    attempts.push(['POST', `/provider/api/v1/support/tenants/${t}/users/${users[t]}/lifecycle/reset_factors`, undefined, t]);
    attempts.push(['PUT', `/provider/api/v1/support/tenants/${t}/log/settings`, { public: true }, t]);
  }
  for (const [method, p, body, t] of attempts) {
    const res = await operatorCall(server, attacker.key, attacker.token, method, p, { body });
    assert.equal(res.status, 403, `${method} ${p}: ${res.text}`);
    const expected = t === 'acme' || t === 'globex' ? 'scope_missing' : t === 'initech' ? 'grant_expired' : 'no_grant';
    assert.equal(res.json.reason, expected, `${method} ${p}`);
  }
  for (const t of TENANTS) {
    const status = await tenantCall(t)('GET', `/users/${users[t]}`);
    assert.equal(status.json.status, 'STAGED', `${t}'s user is untouched`);
    const settings = await tenantCall(t)('GET', '/log/settings');
    assert.equal(settings.json.public, false, `${t}'s log settings are untouched`);
  }

  // The same token replayed from another machine, without the device key, is refused.
  const stranger = await strangerKey();
  const replayed = await operatorCall(server, stranger, attacker.token, 'GET', '/provider/api/v1/support/tenants/acme/users');
  assert.equal(replayed.status, 401, replayed.text);
  assert.equal(replayed.json.reason, 'dpop_key_mismatch');
  assert.match(replayed.headers.get('www-authenticate') ?? '', /^DPoP /);
  const bare = await operatorCall(server, null, attacker.token, 'GET', '/provider/api/v1/support/tenants/acme/users', { proof: null });
  assert.equal(bare.status, 401, bare.text);
  assert.equal(bare.json.reason, 'dpop_missing');
  const bearer = await operatorCall(server, device.key, attacker.token, 'GET', '/provider/api/v1/support/tenants/acme/users', { scheme: 'Bearer' });
  assert.equal(bearer.status, 401, bearer.text);
  assert.equal(bearer.json.reason, 'dpop_scheme_required');
  // A session without the device key cannot get a token either.
  const noDevice = await operatorToken(server, stranger, attackerSession);
  assert.equal(noDevice.status, 400, JSON.stringify(noDevice.json));
  assert.equal(noDevice.json.reason, 'device_unknown');

  // Every step is in the right tenant's System Log, with operator, vendor, device, case and
  // justification.
  for (const t of ['acme', 'globex']) {
    const events = await tenantEvents(server, t, server.tenant(t).token);
    const types = events.map((e) => e.eventType);
    for (const type of ['support.case.open', 'support.access.request', 'user.session.impersonation.grant',
      'user.session.impersonation.initiate', 'support.view', 'support.gate.deny']) {
      assert.ok(types.includes(type), `${t} log has ${type}: ${types.join(', ')}`);
    }
    const views = events.filter((e) => e.eventType === 'support.view');
    assert.equal(views.length, 3, `three views of ${t}`);
    for (const v of views) {
      const d = v.debugContext.debugData;
      assert.equal(d.operatorId, operator.userId);
      assert.equal(d.vendorName, 'Northwind Support');
      assert.equal(d.deviceId, device.id);
      assert.equal(d.caseId, grants[t].caseId);
      assert.equal(d.justification, 'CUSTOMER_INITIATED_SUPPORT');
      if (!d.resource.endsWith('/factors')) {
        assert.match(d.fields, /profile\.email \(masked\)/, d.resource);
        assert.match(d.fields, /profile\.mobilePhone \(masked\)/, d.resource);
      }
      assert.equal(d.operatorLogin, undefined, 'internal detail stays in the provider log');
    }
    const denials = events.filter((e) => e.eventType === 'support.gate.deny');
    const scopeDenials = denials.filter((e) => e.outcome.reason === 'scope_missing');
    assert.equal(scopeDenials.length, 3, `three refused resets or changes in ${t}`);
    assert.ok(denials.every((e) => e.outcome.result === 'DENY'));
    // The replays from another machine aimed at acme's data are in acme's log too.
    const authDenials = denials.filter((e) => e.outcome.reason !== 'scope_missing').map((e) => e.outcome.reason);
    assert.deepEqual(authDenials.sort(), t === 'acme' ? ['dpop_key_mismatch', 'dpop_missing', 'dpop_scheme_required'] : []);
  }
  for (const [t, reason] of [['initech', 'grant_expired'], ['umbrella', 'no_grant']]) {
    const denials = await tenantEvents(server, t, server.tenant(t).token, ['support.gate.deny']);
    assert.equal(denials.length, 4, `a view and three resets refused in ${t}`);
    assert.ok(denials.every((e) => e.outcome.reason === reason), JSON.stringify(denials.map((e) => e.outcome)));
    const views = await tenantEvents(server, t, server.tenant(t).token, ['support.view']);
    assert.equal(views.length, 0);
  }
  const providerLog = await tenantEvents(server, 'provider', admin.token);
  const providerViews = providerLog.filter((e) => e.eventType === 'support.view');
  assert.equal(providerViews.length, 6);
  assert.ok(providerViews.every((e) => e.debugContext.debugData.operatorLogin === operator.login));
  assert.ok(providerViews.every((e) => e.debugContext.debugData.employingEntity === 'Northwind BPO S.A.'));
  const refusedAuth = providerLog.filter((e) => e.eventType === 'support.gate.deny' && e.outcome.reason.startsWith('dpop_'));
  assert.ok(refusedAuth.length >= 3, 'the replay from another machine is in the provider log');

  // ---- The vendor kill switch. ----
  const killed = await admin.api('POST', `/provider/api/v1/vendors/${vendor.id}/lifecycle/suspend`, {
    body: { reason: 'workstation nw-laptop-017 compromised' },
  });
  assert.equal(killed.status, 200, killed.text);
  assert.equal(killed.json.status, 'SUSPENDED');
  assert.ok(killed.json.revoked.sessions >= 1);
  assert.ok(killed.json.revoked.tokens >= 2);
  assert.equal(killed.json.revoked.grants, 2);
  assert.equal(killed.json.revoked.devices, 1);
  for (const token of [op.token, attacker.token]) {
    for (const t of TENANTS) {
      const res = await operatorCall(server, device.key, token, 'GET', `/provider/api/v1/support/tenants/${t}/users`);
      assert.equal(res.status, 401, res.text);
    }
  }
  const again = await operatorToken(server, device.key, attackerSession);
  assert.equal(again.status, 400, JSON.stringify(again.json));
  for (const t of ['acme', 'globex']) {
    const revoked = await tenantEvents(server, t, server.tenant(t).token, ['user.session.impersonation.revoke']);
    assert.equal(revoked.length, 1, `the revocation is in ${t}'s log`);
    const grantsNow = await tenantCall(t)('GET', '/support/grants');
    assert.deepEqual(grantsNow.json.map((g) => g.status), ['REVOKED']);
  }
});
