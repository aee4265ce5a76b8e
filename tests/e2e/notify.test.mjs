// Incident notification end to end, across a crash. Tenants' admins register webhook contacts
// that point at a sink in this test; a contractor's operator asks each tenant for support access;
// the provider declares an incident on that operator, scopes it and notifies the tenants through
// the incidents API. The sink verifies every delivery with the `standardwebhooks` package and
// holds the first one open; the server is killed with SIGKILL meanwhile and restarted on the same
// data directory. Then every tenant has received its notification, under one webhook-id, exactly
// once from the receiver's point of view (it dedupes by webhook-id), the held one again after the
// restart with the same id; the tenants' notifications API shows DELIVERED; each tenant's log has
// one security.notification.deliver event; and the status feed carries the incident's notice.
//
// KEEP_E2E_DATA=1 keeps the data directory; a failure prints the server's output.

import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import http from 'node:http';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { Webhook } from 'standardwebhooks';
import {
  FAST_HASHING, NO_SIGNIN_RATE_LIMIT, createDataDir, custosBin, removeDataDir, request, sleep,
  withStore,
} from './lib/server.mjs';
import {
  createOperator, createVendor, enrollDevice, operatorCall, operatorToken, providerAdmin,
  signInOperator, tenantEvents,
} from './lib/support.mjs';

const execFileP = promisify(execFile);

const TENANTS = ['acme', 'globex', 'initech', 'umbrella', 'hooli', 'stark'];
const SETTINGS = {
  ...FAST_HASHING,
  ...NO_SIGNIN_RATE_LIMIT,
  // A lapsed lease makes a row due again: short here so the test need not wait 30 s.
  'notify.lease': '1s',
  'notify.poll_interval': '50ms',
  'notify.backoff_base': '200ms',
  // One operator reaching six tenants is the scenario, not an anomaly to stop.
  'support.anomaly_max_tenants': 100,
};
const START_TIMEOUT_MS = 30_000;
const DELIVERY_TIMEOUT_MS = 60_000;

const childEnv = Object.fromEntries(
  Object.entries(process.env).filter(([key]) => !key.startsWith('CUSTOS_')),
);

// `custos serve` on `dataDir`, on a fresh port; kill9() and stop() end it.
async function serve(dataDir) {
  const args = withStore(['serve', '--data-dir', dataDir, '--listen', '127.0.0.1', '--port', '0',
    ...Object.entries(SETTINGS).flatMap(([k, v]) => ['--set', `${k}=${v}`])]);
  const child = spawn(custosBin, args, { stdio: ['ignore', 'pipe', 'pipe'], env: childEnv, cwd: dataDir });
  let output = '';
  const keep = (chunk) => {
    output = (output + chunk).slice(-20_000);
  };
  child.stdout.setEncoding('utf8').on('data', keep);
  child.stderr.setEncoding('utf8').on('data', keep);
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  const baseUrl = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`custos did not start:\n${output}`)), START_TIMEOUT_MS);
    child.stdout.on('data', () => {
      const m = /custos listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(output);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    exited.then((s) => {
      clearTimeout(timer);
      reject(new Error(`custos exited before listening (${JSON.stringify(s)}):\n${output}`));
    });
  });
  return {
    baseUrl,
    dataDir,
    output: () => output,
    async kill9() {
      child.kill('SIGKILL');
      return exited;
    },
    async stop() {
      child.kill('SIGTERM');
      return exited;
    },
  };
}

// The receiver: one path per tenant (/hook/<tenant>), each checked with that tenant's secret.
// The first request of all is held open (never answered) until release().
function startSink() {
  const secrets = {};
  const deliveries = [];
  let held = null;
  let onHeld;
  const heldPromise = new Promise((resolve) => {
    onHeld = resolve;
  });
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const tenant = req.url.split('/')[2];
      let payload = null;
      let error = null;
      try {
        payload = new Webhook(secrets[tenant]).verify(body, req.headers);
      } catch (err) {
        error = err.message;
      }
      deliveries.push({
        tenant, id: req.headers['webhook-id'], timestamp: req.headers['webhook-timestamp'],
        payload, error, at: Date.now(),
      });
      if (held === null) {
        held = { req, res, tenant, id: req.headers['webhook-id'] };
        onHeld(held);
        return;  // no answer: the sender waits until it times out, or dies
      }
      res.writeHead(204).end();
    });
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      resolve({
        url: (tenant) => `http://127.0.0.1:${port}/hook/${tenant}`,
        secrets,
        deliveries,
        held: heldPromise,
        release() {
          held?.res.destroy();
        },
        close: () => new Promise((r) => server.close(r)),
      });
    });
  });
}

async function waitFor(what, fn, timeoutMs = DELIVERY_TIMEOUT_MS) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

test('every tenant is notified exactly once across a kill -9 mid-delivery', { timeout: 240_000 }, async (t) => {
  const data = await createDataDir({ tenants: TENANTS });
  const tokens = Object.fromEntries(data.tenants.map((x) => [x.name, x.token]));
  const sink = await startSink();
  let server = await serve(data.dataDir);
  let failed = true;
  try {
    const tenantApi = (name) => (method, p, opts = {}) =>
      request(`${server.baseUrl}/t/${name}/api/v1${p}`, { method, token: tokens[name], ...opts });

    // ---- Each tenant's admin registers a webhook contact; the secret is shown once. ----
    const contacts = {};
    for (const name of TENANTS) {
      const refused = await tenantApi(name)('POST', '/security/contacts', {
        body: { type: 'webhook', name: 'SOC', url: 'http://soc.example.com/hook' },
      });
      assert.equal(refused.status, 400, 'plain http to a remote host is refused');
      assert.equal(refused.json.errorCode, 'E0000001');
      const created = await tenantApi(name)('POST', '/security/contacts', {
        body: { type: 'webhook', name: 'SOC', url: sink.url(name) },
      });
      assert.equal(created.status, 201, created.text);
      assert.match(created.json.secret, /^whsec_[A-Za-z0-9+/]{32}$/);
      sink.secrets[name] = created.json.secret;
      contacts[name] = created.json.id;
      const listed = await tenantApi(name)('GET', '/security/contacts');
      assert.equal(listed.status, 200);
      assert.deepEqual(listed.json.map((c) => c.id), [created.json.id]);
      assert.equal(listed.json[0].secret, undefined, 'the secret is never shown again');
    }

    // ---- A contractor's operator reaches every tenant (an access request each). ----
    const admin = await providerAdmin(server);
    const vendor = await createVendor(admin, { name: 'Northwind Support' });
    const operator = await createOperator(admin, vendor, { login: 'ana.ruiz@northwind.example' });
    const device = await enrollDevice(server, admin, vendor, { name: 'nw-laptop-017' });
    const session = await signInOperator(server, operator);
    const issued = await operatorToken(server, device.key, session);
    assert.equal(issued.status, 200, JSON.stringify(issued.json));
    const windowStart = new Date(Date.now() - 60_000).toISOString();
    for (const name of TENANTS) {
      const opened = await tenantApi(name)('POST', '/support/cases', { body: { subject: 'ticket' } });
      assert.equal(opened.status, 201, opened.text);
      const asked = await operatorCall(server, device.key, issued.json.access_token, 'POST',
        '/provider/api/v1/support/access_requests',
        { body: { tenant: name, caseId: opened.json.id, justification: 'CUSTOMER_INITIATED_SUPPORT', scope: ['read'] } });
      assert.equal(asked.status, 201, asked.text);
    }

    // ---- The provider declares, scopes and notifies. ----
    const declared = await admin.api('POST', '/provider/api/v1/incidents', {
      body: {
        title: 'Contractor workstation compromised',
        indicators: { operatorIds: [operator.userId] },
        window: { start: windowStart, end: new Date(Date.now() + 60_000).toISOString() },
      },
    });
    assert.equal(declared.status, 201, declared.text);
    const incidentId = declared.json.id;
    const scoped = await admin.api('POST', `/provider/api/v1/incidents/${incidentId}/scope`);
    assert.equal(scoped.status, 200, scoped.text);
    const notified = await admin.api('POST', `/provider/api/v1/incidents/${incidentId}/notify`, {
      body: { audience: 'potential' },
    });
    assert.equal(notified.status, 200, notified.text);
    assert.equal(notified.json.notifications, TENANTS.length, notified.text);

    // ---- The sink holds the first delivery open; the others arrive. Then SIGKILL. ----
    let noDelivery;
    const held = await Promise.race([
      sink.held,
      new Promise((resolve, reject) => {
        noDelivery = setTimeout(() => reject(new Error('no delivery reached the sink')),
          DELIVERY_TIMEOUT_MS);
      }),
    ]).finally(() => clearTimeout(noDelivery));
    await waitFor('a delivery to every tenant', () =>
      TENANTS.every((name) => sink.deliveries.some((d) => d.tenant === name)));
    const killed = await server.kill9();
    assert.equal(killed.signal, 'SIGKILL');
    const beforeCrash = sink.deliveries.length;
    sink.release();

    // ---- Restart on the same data directory: the held row is delivered again, same id. ----
    server = await serve(data.dataDir);
    const statuses = await waitFor('DELIVERED in every tenant\'s notifications API', async () => {
      const all = {};
      for (const name of TENANTS) {
        const res = await tenantApi(name)('GET', '/security/notifications');
        assert.equal(res.status, 200, res.text);
        if (res.json.length !== 1 || res.json[0].status !== 'DELIVERED') return null;
        all[name] = res.json[0];
      }
      return all;
    });

    t.diagnostic(`${beforeCrash} deliveries before the kill, ${sink.deliveries.length - beforeCrash} ` +
      `after the restart; ${held.tenant}'s was held open`);
    for (const d of sink.deliveries) assert.equal(d.error, null, `a delivery failed verification: ${d.error}`);
    const redelivered = sink.deliveries.slice(beforeCrash).filter((d) => d.id === held.id);
    assert.ok(redelivered.length >= 1, 'the held notification was delivered again after the restart');
    // The receiver's view: deduplicated by webhook-id, one notification per tenant.
    const byId = new Map();
    for (const d of sink.deliveries) byId.set(d.id, d);
    assert.equal(byId.size, TENANTS.length, JSON.stringify([...byId.keys()]));
    for (const name of TENANTS) {
      const ids = new Set(sink.deliveries.filter((d) => d.tenant === name).map((d) => d.id));
      assert.deepEqual([...ids], [statuses[name].id], `${name} saw one webhook-id, its notification's`);
      const payload = byId.get(statuses[name].id).payload;
      assert.equal(payload.type, 'security.incident.notification');
      assert.equal(payload.data.tenant.name, name);
      assert.equal(payload.data.incidentId, incidentId);
      assert.equal(statuses[name].contactId, contacts[name]);
      assert.equal(statuses[name].channel, 'webhook');
      assert.equal(statuses[name].lastError, null);
    }

    // The provider sees the same (through the restarted server: admin.api knows the old one).
    const providerApi = (method, p, opts = {}) =>
      request(server.baseUrl + p, { method, token: admin.token, ...opts });
    const providerView = await providerApi('GET', `/provider/api/v1/incidents/${incidentId}/notifications`);
    assert.equal(providerView.status, 200, providerView.text);
    assert.doesNotMatch(providerView.text, /"status":"(PENDING|FAILED)"/);

    // One deliver event per tenant, in its own log and in the provider's.
    for (const name of TENANTS) {
      const events = await tenantEvents(server, name, tokens[name], ['security.notification.deliver']);
      assert.equal(events.length, 1, `${name}: ${JSON.stringify(events)}`);
      assert.equal(events[0].outcome.result, 'SUCCESS');
    }
    const providerEvents = await tenantEvents(server, 'provider', admin.token, ['security.notification.deliver']);
    assert.equal(providerEvents.length, TENANTS.length);

    // ---- Acknowledgement: the first time stays. ----
    const ackPath = `/security/notifications/${statuses.acme.id}/acknowledge`;
    const ack = await tenantApi('acme')('POST', ackPath);
    assert.equal(ack.status, 200, ack.text);
    assert.ok(ack.json.acknowledged);
    const again = await tenantApi('acme')('POST', ackPath);
    assert.equal(again.json.acknowledged, ack.json.acknowledged);
    const foreign = await tenantApi('globex')('POST', ackPath);
    assert.equal(foreign.status, 404, 'another tenant cannot acknowledge it');

    // ---- The public status feed carries the incident's notice, naming no tenant. ----
    const feed = await request(`${server.baseUrl}/status.json`);
    assert.equal(feed.status, 200, feed.text);
    assert.equal(feed.headers.get('cache-control'), 'public, max-age=60');
    const notice = feed.json.notices.find((n) => n.kind === 'security');
    assert.ok(notice, feed.text);
    for (const name of TENANTS) assert.doesNotMatch(JSON.stringify(notice), new RegExp(`\\b${name}\\b`));
    const atom = await fetch(`${server.baseUrl}/status.atom`);
    assert.equal(atom.status, 200);
    assert.match(atom.headers.get('content-type'), /^application\/atom\+xml/);
    const atomText = await atom.text();
    assert.match(atomText, new RegExp(`<id>[^<]*#${notice.id}</id>`));
    try {
      await execFileP('xmllint', ['--version']);
    } catch {
      t.diagnostic('xmllint not found: the Atom feed is not checked for well-formedness');
      failed = false;
      return;
    }
    const lint = spawn('xmllint', ['--noout', '-']);
    lint.stdin.end(atomText);
    const lintStatus = await new Promise((r) => lint.on('exit', r));
    assert.equal(lintStatus, 0, 'the Atom feed is well-formed XML');
    failed = false;
  } finally {
    if (failed) process.stderr.write(`\n=== custos output (${data.dataDir})\n${server.output()}\n`);
    const stopped = await server.stop();
    await sink.close();
    if (!failed) {
      assert.equal(stopped.code, 0, `custos exit status after SIGTERM: ${JSON.stringify(stopped)}`);
      await removeDataDir(data);
    }
  }
});

test('provider admins publish and update status notices; anyone reads them', { timeout: 60_000 }, async () => {
  const data = await createDataDir({ tenants: ['acme'] });
  const server = await serve(data.dataDir);
  let failed = true;
  try {
    const admin = await providerAdmin(server);
    const acmeToken = data.tenants[0].token;
    const body = { kind: 'availability', title: 'Sign-in latency <eu-west> & more', body: 'Investigating.' };
    const byTenant = await request(`${server.baseUrl}/provider/api/v1/status/notices`, {
      method: 'POST', token: acmeToken, body,
    });
    assert.equal(byTenant.status, 401, 'a tenant admin cannot publish');
    const published = await admin.api('POST', '/provider/api/v1/status/notices', { body });
    assert.equal(published.status, 201, published.text);
    const updated = await admin.api('PUT', `/provider/api/v1/status/notices/${published.json.id}`, {
      body: { ...body, body: 'Resolved.' },
    });
    assert.equal(updated.status, 200, updated.text);
    assert.equal(updated.json.published, published.json.published);

    const feed = await request(`${server.baseUrl}/status.json`);
    assert.deepEqual(feed.json.notices.map((n) => [n.id, n.body]), [[published.json.id, 'Resolved.']]);
    const atom = await (await fetch(`${server.baseUrl}/status.atom`)).text();
    assert.match(atom, /<title type="text">Sign-in latency &lt;eu-west&gt; &amp; more<\/title>/);
    assert.match(atom, /<category term="availability"\/>/);

    const events = await tenantEvents(server, 'provider', admin.token, ['status.notice.publish', 'status.notice.update']);
    assert.deepEqual(events.map((e) => e.eventType), ['status.notice.publish', 'status.notice.update']);
    failed = false;
  } finally {
    if (failed) process.stderr.write(`\n=== custos output (${data.dataDir})\n${server.output()}\n`);
    await server.stop();
    if (!failed) await removeDataDir(data);
  }
});
