// Incident notification by e-mail, end to end, through an SMTP relay process. The relay is a
// small SMTP server in this test (RFC 5321: EHLO, MAIL, RCPT, DATA with dot-unstuffing, RSET,
// QUIT); `custos serve` reaches it through `notify.smtp_url` with libcurl, as it would a real
// relay. Three tenants register e-mail security contacts:
//   - acme's relay accepts at once;
//   - globex's answers its first RCPT with 451 (try later), then accepts: a retry with the same
//     Message-ID;
//   - initech's is unknown to the relay (550): the notification fails at once, without retries.
// The test checks the envelope, the headers (RFC 2047 subject, Message-ID = notification id),
// the body's facts and links, the tenants' notifications API and the System Log events.
//
// KEEP_E2E_DATA=1 keeps the data directory; a failure prints the server's output.

import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { createDataDir, removeDataDir, request, serveDataDir, sleep } from './lib/server.mjs';
import {
  createOperator, createVendor, enrollDevice, operatorCall, operatorToken, providerAdmin,
  signInOperator, tenantEvents,
} from './lib/support.mjs';

const MAIL_FROM = 'security@custos.example';
const TITLE = 'Contractor workstation compromised — Northwind Support';
const CONTACTS = {
  acme: 'soc@acme.example',
  globex: 'flaky@globex.example',
  initech: 'nobody@initech.example',
};
const TENANTS = Object.keys(CONTACTS);
const DELIVERY_TIMEOUT_MS = 60_000;

// The relay. Every accepted message is kept with its envelope; `refusals` counts RCPT refusals.
function startRelay() {
  const messages = [];
  const refusals = [];
  const sockets = new Set();
  let flakyLeft = 1;  // globex's first RCPT is answered 451
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    socket.setEncoding('utf8');
    const reply = (line) => socket.write(`${line}\r\n`);
    let buffer = '';
    let envelope = { from: null, to: [] };
    let data = null;  // lines of the message while in DATA
    let helo = null;
    reply('220 relay.test ESMTP ready');
    socket.on('data', (chunk) => {
      buffer += chunk;
      for (let nl = buffer.indexOf('\r\n'); nl >= 0; nl = buffer.indexOf('\r\n')) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 2);
        if (data !== null) {
          if (line === '.') {
            messages.push({ helo, from: envelope.from, to: envelope.to, text: data.join('\r\n') });
            data = null;
            envelope = { from: null, to: [] };
            reply('250 2.0.0 queued');
          } else {
            data.push(line.startsWith('.') ? line.slice(1) : line);
          }
          continue;
        }
        const verb = line.slice(0, 4).toUpperCase();
        const arg = line.slice(4).trim();
        if (verb === 'EHLO') {
          helo = arg;
          reply('250-relay.test');
          reply('250-8BITMIME');
          reply('250 SIZE 1048576');
        } else if (verb === 'HELO') {
          helo = arg;
          reply('250 relay.test');
        } else if (verb === 'MAIL') {
          const m = /^FROM:\s*<([^>]*)>/i.exec(arg);
          if (!m) {
            reply('501 5.5.4 syntax: MAIL FROM:<address>');
            continue;
          }
          envelope = { from: m[1], to: [] };
          reply('250 2.1.0 ok');
        } else if (verb === 'RCPT') {
          const m = /^TO:\s*<([^>]*)>/i.exec(arg);
          if (!m || envelope.from === null) {
            reply('503 5.5.1 need MAIL first');
          } else if (m[1].startsWith('nobody@')) {
            refusals.push({ to: m[1], code: 550 });
            reply('550 5.1.1 no such user');
          } else if (m[1].startsWith('flaky@') && flakyLeft > 0) {
            flakyLeft -= 1;
            refusals.push({ to: m[1], code: 451 });
            reply('451 4.3.0 try again later');
          } else {
            envelope.to.push(m[1]);
            reply('250 2.1.5 ok');
          }
        } else if (verb === 'DATA') {
          if (envelope.to.length === 0) {
            reply('554 5.5.1 no valid recipients');
          } else {
            data = [];
            reply('354 end with <CRLF>.<CRLF>');
          }
        } else if (verb === 'RSET') {
          envelope = { from: null, to: [] };
          reply('250 2.0.0 ok');
        } else if (verb === 'NOOP') {
          reply('250 2.0.0 ok');
        } else if (verb === 'QUIT') {
          reply('221 2.0.0 bye');
          socket.end();
        } else {
          reply('502 5.5.2 not implemented');
        }
      }
    });
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      resolve({
        url: `smtp://127.0.0.1:${server.address().port}`,
        messages,
        refusals,
        close() {
          for (const s of sockets) s.destroy();
          return new Promise((r) => server.close(r));
        },
      });
    });
  });
}

// RFC 5322 headers (unfolded, names lower-cased) and body of one message.
function parseMessage(text) {
  const split = text.indexOf('\r\n\r\n');
  assert.ok(split > 0, `no header/body separator in:\n${text}`);
  const headers = {};
  for (const line of text.slice(0, split).replace(/\r\n[ \t]/g, ' ').split('\r\n')) {
    const colon = line.indexOf(':');
    headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { headers, body: text.slice(split + 4) };
}

// RFC 2047 "B" encoded words, as a mail reader shows them (adjacent words joined).
function decodeWords(value) {
  return value
    .replace(/\?=\s+=\?/g, '?==?')
    .replace(/=\?UTF-8\?B\?([A-Za-z0-9+/=]*)\?=/gi, (_, b64) => Buffer.from(b64, 'base64').toString('utf8'));
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

test('security contacts are notified by e-mail through an SMTP relay', { timeout: 180_000 }, async (t) => {
  const relay = await startRelay();
  const data = await createDataDir({ tenants: TENANTS });
  const tokens = Object.fromEntries(data.tenants.map((x) => [x.name, x.token]));
  const server = await serveDataDir(data, {
    settings: {
      'notify.smtp_url': relay.url,
      'notify.mail_from': MAIL_FROM,
      'notify.poll_interval': '50ms',
      'notify.backoff_base': '300ms',
      'support.anomaly_max_tenants': 100,
    },
  });
  let failed = true;
  try {
    const tenantApi = (name) => (method, p, opts = {}) =>
      request(`${server.baseUrl}/t/${name}/api/v1${p}`, { method, token: tokens[name], ...opts });

    // ---- Each tenant's admin registers an e-mail contact; a bad address is refused. ----
    const contacts = {};
    for (const name of TENANTS) {
      const refused = await tenantApi(name)('POST', '/security/contacts', {
        body: { type: 'email', name: 'SOC', address: `soc@${name}.example\r\nBcc: x@evil.example` },
      });
      assert.equal(refused.status, 400, refused.text);
      const created = await tenantApi(name)('POST', '/security/contacts', {
        body: { type: 'email', name: 'SOC', address: CONTACTS[name] },
      });
      assert.equal(created.status, 201, created.text);
      assert.equal(created.json.secret, undefined, 'an e-mail contact has no secret');
      contacts[name] = created.json.id;
    }

    // ---- A contractor's operator asks every tenant for access; the provider notifies. ----
    const admin = await providerAdmin(server);
    const vendor = await createVendor(admin, { name: 'Northwind Support' });
    const operator = await createOperator(admin, vendor, { login: 'li.wei@northwind.example' });
    const device = await enrollDevice(server, admin, vendor, { name: 'nw-laptop-021' });
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
    const declared = await admin.api('POST', '/provider/api/v1/incidents', {
      body: {
        title: TITLE,
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

    // ---- Each notification ends: two delivered, initech's failed. ----
    const finalStatus = { acme: 'DELIVERED', globex: 'DELIVERED', initech: 'FAILED' };
    const rows = await waitFor('every notification to end', async () => {
      const all = {};
      for (const name of TENANTS) {
        const res = await tenantApi(name)('GET', '/security/notifications');
        assert.equal(res.status, 200, res.text);
        if (res.json.length !== 1 || res.json[0].status === 'PENDING') return null;
        all[name] = res.json[0];
      }
      return all;
    });
    for (const name of TENANTS) {
      assert.equal(rows[name].status, finalStatus[name], `${name}: ${JSON.stringify(rows[name])}`);
      assert.equal(rows[name].channel, 'email');
      assert.equal(rows[name].contactId, contacts[name]);
    }
    assert.equal(rows.acme.attempts, 1);
    assert.equal(rows.globex.attempts, 2, 'globex was retried once after the 451');
    assert.equal(rows.initech.attempts, 1, 'a 550 is not retried');
    assert.match(rows.initech.lastError, /SMTP 550/);
    assert.deepEqual(relay.refusals.map((r) => `${r.code} ${r.to}`).sort(),
      [`451 ${CONTACTS.globex}`, `550 ${CONTACTS.initech}`]);

    // ---- What the relay received: one message each for acme and globex. ----
    t.diagnostic(`${relay.messages.length} messages accepted, ${relay.refusals.length} recipients refused`);
    assert.equal(relay.messages.length, 2, JSON.stringify(relay.messages.map((m) => m.to)));
    for (const name of ['acme', 'globex']) {
      const sent = relay.messages.filter((m) => m.to.includes(CONTACTS[name]));
      assert.equal(sent.length, 1, `${name} got one message`);
      const [message] = sent;
      assert.equal(message.from, MAIL_FROM, 'the envelope sender is notify.mail_from');
      assert.deepEqual(message.to, [CONTACTS[name]]);
      const { headers, body } = parseMessage(message.text);
      assert.equal(headers.from, MAIL_FROM);
      assert.equal(headers.to, CONTACTS[name]);
      assert.equal(headers['message-id'], `<${rows[name].id}@custos.example>`);
      assert.equal(headers['auto-submitted'], 'auto-generated');
      assert.match(headers['content-type'], /^text\/plain; charset=utf-8$/);
      assert.match(headers.subject, /^=\?UTF-8\?B\?/, 'a non-ASCII subject is RFC 2047 encoded');
      assert.equal(decodeWords(headers.subject), `[Custos security] ${TITLE}`);
      assert.ok(!Number.isNaN(Date.parse(headers.date)), headers.date);
      assert.match(body, new RegExp(`Tenant: +${name}\\r\\n`));
      assert.match(body, new RegExp(`Incident: +${incidentId}\\r\\n`));
      assert.match(body, /Your tenant is: +potentially affected/);
      assert.match(body, new RegExp(
        `${server.baseUrl.replace(/[.]/g, '\\.')}/t/${name}/api/v1/security/notifications/${rows[name].id}/acknowledge`));
      assert.match(body, new RegExp(`Notification id: ${rows[name].id}`));
      for (const line of body.split('\r\n')) assert.ok(line.length <= 998);
      for (const other of TENANTS.filter((x) => x !== name)) {
        assert.doesNotMatch(message.text, new RegExp(`\\b${other}\\b`), `${name}'s mail names no other tenant`);
      }
    }

    // ---- The System Log: one deliver event per notification, with its outcome. ----
    for (const name of TENANTS) {
      const events = await tenantEvents(server, name, tokens[name], ['security.notification.deliver']);
      assert.equal(events.length, 1, `${name}: ${JSON.stringify(events)}`);
      if (name === 'initech') {
        assert.equal(events[0].outcome.result, 'FAILURE');
        assert.equal(events[0].outcome.reason, 'smtp_550');
      } else {
        assert.equal(events[0].outcome.result, 'SUCCESS');
      }
    }
    failed = false;
  } finally {
    if (failed) server.reportFailure('the e-mail notification test');
    const stopped = await server.stop();
    await relay.close();
    if (!failed) {
      assert.equal(stopped.code, 0, `custos exit status after SIGTERM: ${JSON.stringify(stopped)}`);
      await removeDataDir(data);
    }
  }
});
