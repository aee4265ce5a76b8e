// Incident response end to end: two engineers of a contractor work for three tenants from
// managed devices; one workstation is then treated as compromised. A provider admin declares the
// incident through the API, scopes it (the contractor reached three tenants: the potential
// scope; the workstation itself two: the confirmed scope), downloads a tenant's evidence package
// and checks it offline with `custos log verify --evidence` (a flipped byte fails), notifies the
// tenants' security contacts (outbox rows) and closes the incident.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createServer } from 'node:http';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before } from 'node:test';
import { custosBin, request, serverTest, sqlRows, startServer, withStore } from './lib/server.mjs';
import {
  createOperator, createVendor, enrollDevice, operatorCall, operatorToken, providerAdmin,
  signInOperator, tenantEvents,
} from './lib/support.mjs';

let server;
let sink;
let workDir;
const hooks = [];
const test = serverTest(() => server);

const TENANTS = ['acme', 'globex', 'initech', 'umbrella'];

before(async () => {
  server = await startServer({ tenants: TENANTS, settings: { 'support.anomaly_max_tenants': 10 } });
  workDir = await mkdtemp(path.join(os.tmpdir(), 'custos-incident-'));
  // The tenants' webhook receiver: takes every delivery.
  sink = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', () => {
      hooks.push({ headers: req.headers, body });
      res.writeHead(204).end();
    });
  });
  await new Promise((resolve) => sink.listen(0, '127.0.0.1', resolve));
});

after(async () => {
  await new Promise((resolve) => sink.close(resolve));
  await rm(workDir, { recursive: true, force: true });
  const status = await server.stop();
  assert.equal(status.code, 0, `custos exit status after SIGTERM: ${JSON.stringify(status)}`);
});

const tenantCall = (name) => (method, p, opts = {}) =>
  request(`${server.baseUrl}/t/${name}/api/v1${p}`, { method, token: server.tenant(name).token, ...opts });

// `custos ARGS...`; returns { code, stdout, stderr }.
function runCustos(args) {
  return new Promise((resolve) => {
    execFile(custosBin, withStore(args), { timeout: 60_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? (err.code ?? 1) : 0, stdout, stderr }));
  });
}

// An operator signed in on an enrolled device, with a DPoP-bound token.
async function worker(admin, vendor, login, deviceName) {
  const op = await createOperator(admin, vendor, { login });
  const device = await enrollDevice(server, admin, vendor, { name: deviceName });
  const session = await signInOperator(server, op);
  const issued = await operatorToken(server, device.key, session);
  assert.equal(issued.status, 200, JSON.stringify(issued.json));
  return { op, device, key: device.key, token: issued.json.access_token };
}

// A read-only grant for `w` in `tenant`: the tenant admin opens a case, the operator asks, the
// tenant admin approves.
async function grant(w, tenant) {
  const opened = await tenantCall(tenant)('POST', '/support/cases', { body: { subject: `ticket for ${tenant}` } });
  assert.equal(opened.status, 201, opened.text);
  const asked = await operatorCall(server, w.key, w.token, 'POST', '/provider/api/v1/support/access_requests', {
    body: { tenant, caseId: opened.json.id, justification: 'CUSTOMER_INITIATED_SUPPORT', scope: ['read'] },
  });
  assert.equal(asked.status, 201, asked.text);
  const approved = await tenantCall(tenant)('POST', `/support/access_requests/${asked.json.id}/approve`, {
    body: { duration: '2h' },
  });
  assert.equal(approved.status, 200, approved.text);
}

test('an incident is declared, scoped, evidenced, notified and closed through the API', { timeout: 300_000 }, async () => {
  const started = new Date(Date.now() - 60_000);
  const admin = await providerAdmin(server);
  const vendor = await createVendor(admin, { name: 'Northwind Support', employingEntity: 'Northwind BPO S.A.' });
  const ana = await worker(admin, vendor, 'ana.ruiz@northwind.example', 'nw-laptop-017');
  const ben = await worker(admin, vendor, 'ben.ito@northwind.example', 'nw-laptop-022');
  const jane = {};
  for (const t of TENANTS) {
    const res = await tenantCall(t)('POST', '/users?activate=false', {
      body: { profile: { firstName: 'Jane', lastName: 'Doe', email: `jane@${t}.example`, login: `jane@${t}.example` } },
    });
    assert.equal(res.status, 200, res.text);
    jane[t] = res.json.id;
  }

  // Ana's workstation (the one later found compromised) reaches acme and globex, and tries a
  // password reset at acme that is refused; Ben works on initech. Nobody of the vendor touches
  // umbrella.
  await grant(ana, 'acme');
  await grant(ana, 'globex');
  await grant(ben, 'initech');
  for (const t of ['acme', 'globex']) {
    const list = await operatorCall(server, ana.key, ana.token, 'GET', `/provider/api/v1/support/tenants/${t}/users`);
    assert.equal(list.status, 200, list.text);
  }
  const reset = await operatorCall(server, ana.key, ana.token, 'POST',
    `/provider/api/v1/support/tenants/acme/users/${jane.acme}/lifecycle/reset_password`);
  assert.equal(reset.status, 403, reset.text);
  const initech = await operatorCall(server, ben.key, ben.token, 'GET', '/provider/api/v1/support/tenants/initech/users');
  assert.equal(initech.status, 200, initech.text);

  const api = admin.api;
  const incidents = '/provider/api/v1/incidents';

  // ---- Declare. ----
  const bad = await api('POST', incidents, {
    body: { title: 'x', indicators: { vendorIds: [vendor.id] }, window: { start: 'yesterday', end: new Date().toISOString() } },
  });
  assert.equal(bad.status, 400, bad.text);
  assert.equal(bad.json.errorCode, 'E0000001');
  assert.equal(bad.json.errorSummary, 'Api validation failed: window');
  assert.match(bad.json.errorCauses[0].errorSummary, /^window\.start: /);
  const anonymous = await request(server.baseUrl + incidents, { method: 'POST', token: null, body: {} });
  assert.equal(anonymous.status, 401, anonymous.text);

  const declared = await api('POST', incidents, {
    body: {
      title: 'Support workstation nw-laptop-017 taken over',
      indicators: { vendorIds: [vendor.id], deviceIds: [ana.device.id] },
      window: { start: started.toISOString(), end: new Date(Date.now() + 3_600_000).toISOString() },
    },
  });
  assert.equal(declared.status, 201, declared.text);
  const incident = declared.json;
  assert.match(incident.id, /^inc/);
  assert.equal(incident.status, 'DECLARED');
  assert.deepEqual(incident.compromiseWindow, incident.window);
  assert.equal(declared.headers.get('location'), `${server.baseUrl}${incidents}/${incident.id}`);
  const one = `${incidents}/${incident.id}`;

  // Notification needs a scope first.
  const early = await api('POST', `${one}/notify`, { body: {} });
  assert.equal(early.status, 409, early.text);
  assert.equal(early.json.reason, 'incident_not_scoped');

  // ---- Scope: the contractor reached three tenants, the workstation two. ----
  const scoped = await api('POST', `${one}/scope`);
  assert.equal(scoped.status, 200, scoped.text);
  const scope = scoped.json;
  const names = (list) => list.map((t) => t.name).sort();
  assert.deepEqual(names(scope.tenants), ['acme', 'globex', 'initech']);
  assert.deepEqual(names(scope.tenants.filter((t) => t.confirmed)), ['acme', 'globex']);
  assert.equal(scope.potential, 3);
  assert.equal(scope.confirmed, 2);
  const acme = scope.tenants.find((t) => t.name === 'acme');
  assert.ok(acme.views >= 1, JSON.stringify(acme));
  // The reset was refused at the gate (the grant is read-only): a refusal in the timeline.
  assert.ok(acme.refusals >= 1, JSON.stringify(acme));
  assert.equal(acme.grantsUsed.length, 1);
  const refused = acme.timeline.filter((e) => e.outcome === 'DENY');
  assert.ok(refused.some((e) => e.reason === 'scope_missing'), JSON.stringify(acme.timeline));
  assert.ok(acme.timeline.every((e) => e.deviceId === ana.device.id));
  assert.ok(acme.timeline.some((e) => e.eventType === 'support.view' && /profile\.email/.test(e.fields)));
  const last = await api('GET', `${one}/scope`);
  assert.equal(last.status, 200, last.text);
  assert.deepEqual(last.json.tenants, scope.tenants);
  assert.equal((await api('GET', one)).json.status, 'SCOPED');

  // ---- Report. ----
  const markdown = await api('GET', `${one}/report`);
  assert.equal(markdown.status, 200, markdown.text);
  assert.match(markdown.headers.get('content-type'), /^text\/markdown/);
  assert.match(markdown.text, /\| acme \| yes \|/);
  assert.match(markdown.text, /\| initech \| no \|/);
  const html = await api('GET', `${one}/report?format=html`);
  assert.equal(html.status, 200, html.text);
  assert.match(html.headers.get('content-type'), /^text\/html/);
  assert.match(html.text, /<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
  assert.doesNotMatch(html.text, /<script/);

  // ---- Evidence: verifies offline against the published key; a flipped byte does not. ----
  const evidence = await api('GET', `${one}/evidence/acme`);
  assert.equal(evidence.status, 200, evidence.text);
  assert.equal(evidence.headers.get('content-disposition'),
    `attachment; filename="evidence-${incident.id}-acme.json"`);
  assert.equal(evidence.json.tenant.name, 'acme');
  assert.equal(evidence.json.events.length, acme.timeline.length);
  const file = path.join(workDir, `evidence-${incident.id}-acme.json`);
  await writeFile(file, evidence.text);
  const keys = await request(`${server.baseUrl}/.well-known/custos/log-keys`, { token: null });
  assert.equal(keys.status, 200, keys.text);
  const vkey = keys.text.trim().split('\n')[0];
  const verified = await runCustos(['log', 'verify', '--evidence', file, '--vkey', vkey]);
  assert.equal(verified.code, 0, verified.stderr + verified.stdout);
  assert.match(verified.stdout, new RegExp(`verified evidence for tenant acme .*incident ${incident.id}`));
  const bytes = await readFile(file);
  const at = bytes.indexOf('support.view');
  assert.ok(at > 0);
  bytes[at] ^= 1;
  const flipped = path.join(workDir, 'flipped.json');
  await writeFile(flipped, bytes);
  const broken = await runCustos(['log', 'verify', '--evidence', flipped, '--vkey', vkey]);
  assert.equal(broken.code, 1, broken.stderr + broken.stdout);
  const outside = await api('GET', `${one}/evidence/umbrella`);
  assert.equal(outside.status, 404, outside.text);
  // The manifest is in acme's own log.
  const manifests = await tenantEvents(server, 'acme', server.tenant('acme').token, ['security.incident.evidence']);
  assert.equal(manifests.length, 1);
  assert.equal(manifests[0].debugContext.debugData.incidentId, incident.id);

  // ---- Notify: acme and initech have a webhook contact, globex none. ----
  for (const t of ['acme', 'initech']) {
    const contact = await tenantCall(t)('POST', '/security/contacts', {
      body: { type: 'webhook', name: `${t} SOC`, url: `http://127.0.0.1:${sink.address().port}/hooks/${t}` },
    });
    assert.equal(contact.status, 201, contact.text);
  }
  const notified = await api('POST', `${one}/notify`, { body: { audience: 'potential' } });
  assert.equal(notified.status, 200, notified.text);
  assert.equal(notified.json.status, 'NOTIFIED');
  assert.equal(notified.json.tenants, 3);
  assert.equal(notified.json.notifications, 2);
  assert.equal(notified.json.tenantsWithoutContacts, 1);
  const again = await api('POST', `${one}/notify`);
  assert.equal(again.status, 200, again.text);
  assert.equal(again.json.notifications, 0, 'a second call queues nothing new');
  assert.equal(again.json.alreadyNotified, 2);
  const rows = await sqlRows(server,
    `SELECT tenant_id, status, payload_json FROM notifications WHERE incident_id = '${incident.id}'`);
  assert.equal(rows.length, 2);
  for (const row of rows) {
    assert.ok(['PENDING', 'DELIVERED'].includes(row.status), row.status);
    const payload = JSON.parse(row.payload_json);
    assert.equal(payload.type, 'security.incident.notification');
    assert.equal(payload.data.incidentId, incident.id);
  }
  assert.deepEqual(rows.map((r) => r.tenant_id).sort(),
    [server.tenant('acme').id, server.tenant('initech').id].sort());
  const status = await api('GET', `${one}/notifications`);
  assert.equal(status.status, 200, status.text);
  assert.deepEqual(status.json.tenants.map((t) => [t.tenantName, t.notifications.length]),
    [['acme', 1], ['globex', 0], ['initech', 1]]);

  // The tenant sees the incident, and fetches its own package.
  const seen = await tenantCall('acme')('GET', '/security/incidents');
  assert.equal(seen.status, 200, seen.text);
  assert.deepEqual(seen.json.map((i) => i.id), [incident.id]);
  assert.equal(seen.json[0].confirmed, true);
  assert.equal(seen.json[0].evidence, `/t/acme/api/v1/security/incidents/${incident.id}/evidence`);
  assert.equal(seen.json[0].indicators, undefined);
  const own = await tenantCall('acme')('GET', `/security/incidents/${incident.id}/evidence`);
  assert.equal(own.status, 200, own.text);
  assert.equal(own.json.tenant.name, 'acme');
  const notTold = await tenantCall('globex')('GET', `/security/incidents/${incident.id}/evidence`);
  assert.equal(notTold.status, 404, notTold.text);

  // ---- Close; nothing after. ----
  const closed = await api('POST', `${one}/close`, { body: { notes: 'Contract ended.' } });
  assert.equal(closed.status, 200, closed.text);
  assert.equal(closed.json.status, 'CLOSED');
  const rescope = await api('POST', `${one}/scope`);
  assert.equal(rescope.status, 409, rescope.text);
  assert.equal(rescope.json.errorCode, 'E0000038');
  assert.equal(rescope.json.reason, 'incident_closed');

  // Every step is in the provider log; the refusals too.
  const providerLog = await tenantEvents(server, 'provider', admin.token);
  const steps = providerLog.filter((e) => e.eventType.startsWith('security.incident.'))
    .map((e) => `${e.eventType} ${e.outcome.result}`);
  for (const step of ['declare SUCCESS', 'declare FAILURE', 'scope SUCCESS', 'scope FAILURE',
    'evidence SUCCESS', 'evidence FAILURE', 'notify SUCCESS', 'notify FAILURE', 'close SUCCESS']) {
    assert.ok(steps.includes(`security.incident.${step}`), `${step} in ${steps.join(', ')}`);
  }
  const scopeEvent = providerLog.find((e) => e.eventType === 'security.incident.scope' && e.outcome.result === 'SUCCESS');
  assert.equal(scopeEvent.debugContext.debugData.potential, '3');
  assert.equal(scopeEvent.debugContext.debugData.confirmed, '2');
});
