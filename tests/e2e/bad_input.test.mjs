// Requests a careless or hostile client sends. Each gets the documented error, and the store
// shows that nothing changed: same users, groups, memberships and factors, row for row; and
// for requests too malformed to be a decision, not even an event.

import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import { Readable } from 'node:stream';
import { request, serverTest, startServer, storeSnapshot, tenantApi } from './lib/server.mjs';

const MAX_BODY = 4096;
const PASSWORD = 'velvet-Comet-Meadow-73';

let server;
let acme;
let globex;
let alice; // a user of acme
let bob; // a user of globex
const test = serverTest(() => server);

function profileFor(name) {
  const login = `${name}.${Date.now()}@example.com`;
  return { firstName: name, lastName: 'Example', email: login, login };
}

async function createUser(api, name) {
  const profile = profileFor(name);
  const res = await api('POST', '/api/v1/users?activate=true', {
    body: { profile, credentials: { password: { value: PASSWORD } } },
  });
  assert.equal(res.status, 200, res.text);
  return { id: res.json.id, login: profile.login, profile };
}

// Runs `send`, checks the answer with `check`, and asserts the store did not change. With
// `noEvent`, the number of events must not change either.
async function unchanged(send, check, { noEvent = false } = {}) {
  const before = await storeSnapshot(server);
  const res = await send();
  check(res);
  const after = await storeSnapshot(server);
  const { eventCount: eventsBefore, ...restBefore } = before;
  const { eventCount: eventsAfter, ...restAfter } = after;
  assert.deepEqual(restAfter, restBefore, 'the store changed');
  if (noEvent) assert.equal(eventsAfter, eventsBefore, 'an event was written');
  return res;
}

function expectError(status, errorCode) {
  return (res) => {
    assert.equal(res.status, status, `${res.status} ${res.text}`);
    if (errorCode) {
      assert.equal(res.json?.errorCode, errorCode, res.text);
      assert.equal(typeof res.json.errorSummary, 'string');
      assert.ok(res.json.errorSummary.length > 0);
      assert.equal(typeof res.json.errorId, 'string');
      assert.ok(Array.isArray(res.json.errorCauses), `errorCauses is an array: ${res.text}`);
    }
  };
}

before(async () => {
  server = await startServer({
    tenants: ['acme', 'globex'],
    settings: { 'server.max_body_bytes': MAX_BODY },
  });
  acme = tenantApi(server, 'acme');
  globex = tenantApi(server, 'globex');
  alice = await createUser(acme, 'alice');
  bob = await createUser(globex, 'bob');
  const group = await acme('POST', '/api/v1/groups', {
    body: { profile: { name: 'Staff', description: 'Everyone' } },
  });
  assert.equal(group.status, 200, group.text);
  const member = await acme('PUT', `/api/v1/groups/${group.json.id}/users/${alice.id}`);
  assert.equal(member.status, 204, member.text);
});

after(async () => {
  if (!server) return;
  const status = await server.stop();
  assert.equal(status.code, 0, `custos exit status after SIGTERM: ${JSON.stringify(status)}`);
});

test('the store is readable and holds what the setup made', async () => {
  const snap = await storeSnapshot(server);
  assert.deepEqual(snap.users.map((u) => u.login).sort(), [alice.login, bob.login].sort());
  assert.equal(snap.groups.length, 1);
  assert.equal(snap.members.length, 1);
  assert.ok(snap.eventCount >= 4);
});

test('a body that is not JSON: 400 E0000003', async () => {
  for (const raw of ['{"profile": {', 'not json', '{"profile": {"login": "a@b.c",}}', '\u0000']) {
    await unchanged(
      () => acme('POST', '/api/v1/users?activate=true', { raw }),
      expectError(400, 'E0000003'),
      { noEvent: true },
    );
  }
  await unchanged(
    () => acme('POST', `/api/v1/users/${alice.id}`, { raw: '{"profile": {"firstName": "Eve"' }),
    expectError(400, 'E0000003'),
    { noEvent: true },
  );
  await unchanged(
    () => acme('POST', '/api/v1/groups', { raw: '{{' }),
    expectError(400, 'E0000003'),
    { noEvent: true },
  );
});

test('JSON that is not an object: 400 E0000001', async () => {
  for (const raw of ['[]', '"alice"', '42', 'null']) {
    await unchanged(
      () => acme('POST', '/api/v1/users', { raw }),
      expectError(400, 'E0000001'),
      { noEvent: true },
    );
  }
});

test(`a body over server.max_body_bytes (${MAX_BODY}): 413`, async () => {
  const big = { profile: { ...profileFor('big'), nickName: 'x'.repeat(MAX_BODY) } };
  await unchanged(
    () => acme('POST', '/api/v1/users?activate=true', { body: big }),
    (res) => assert.equal(res.status, 413, res.text),
    { noEvent: true },
  );
  // The same without a Content-Length (chunked): the limit holds for the bytes, not the header.
  await unchanged(
    () =>
      acme('POST', '/api/v1/users?activate=true', {
        raw: Readable.toWeb(Readable.from([JSON.stringify(big)])),
      }),
    (res) => assert.equal(res.status, 413, res.text),
    { noEvent: true },
  );
  // The server still answers afterwards.
  assert.equal((await acme('GET', `/api/v1/users/${alice.id}`)).status, 200);
});

test('unknown profile properties: 400 E0000001', async () => {
  await unchanged(
    () =>
      acme('POST', '/api/v1/users?activate=true', {
        body: { profile: { ...profileFor('carol'), favouriteColour: 'teal' } },
      }),
    expectError(400, 'E0000001'),
    { noEvent: true },
  );
  await unchanged(
    () => acme('POST', `/api/v1/users/${alice.id}`, { body: { profile: { shoeSize: '42' } } }),
    expectError(400, 'E0000001'),
    { noEvent: true },
  );
});

test('wrong types: 400 E0000001', async () => {
  const cases = [
    { profile: { ...profileFor('dave'), login: 12345 } },
    { profile: { ...profileFor('dave'), firstName: ['Dave'] } },
    { profile: { ...profileFor('dave'), email: { address: 'dave@example.com' } } },
    { profile: profileFor('dave'), credentials: { password: { value: { nested: 'x' } } } },
    { profile: profileFor('dave'), credentials: { password: 'not-an-object' } },
    { profile: 'dave@example.com' },
    { profile: [profileFor('dave')] },
  ];
  for (const body of cases) {
    await unchanged(
      () => acme('POST', '/api/v1/users?activate=true', { body }),
      expectError(400, 'E0000001'),
      { noEvent: true },
    );
  }
  await unchanged(
    () => acme('POST', `/api/v1/users/${alice.id}`, { body: { profile: { firstName: 42 } } }),
    expectError(400, 'E0000001'),
    { noEvent: true },
  );
  await unchanged(
    () => acme('POST', '/api/v1/groups', { body: { profile: { name: 7 } } }),
    expectError(400, 'E0000001'),
    { noEvent: true },
  );
  await unchanged(
    () => acme('POST', '/api/v1/authn', { token: null, body: { username: 42, password: PASSWORD } }),
    expectError(400, 'E0000001'),
  );
});

test('missing required properties: 400 E0000001', async () => {
  const { login, ...noLogin } = profileFor('erin');
  await unchanged(
    () => acme('POST', '/api/v1/users?activate=true', { body: { profile: noLogin } }),
    expectError(400, 'E0000001'),
    { noEvent: true },
  );
  await unchanged(
    () => acme('POST', '/api/v1/users?activate=true', { body: {} }),
    expectError(400, 'E0000001'),
    { noEvent: true },
  );
  // A partial update cannot remove the login either.
  await unchanged(
    () => acme('POST', `/api/v1/users/${alice.id}`, { body: { profile: { login: null } } }),
    expectError(400, 'E0000001'),
  );
  // Nor can a full replacement leave it out.
  const { login: _, ...aliceNoLogin } = alice.profile;
  await unchanged(
    () => acme('PUT', `/api/v1/users/${alice.id}`, { body: { profile: aliceNoLogin } }),
    expectError(400, 'E0000001'),
  );
});

test('a login already taken (in any letter case): 400 E0000001', async () => {
  await unchanged(
    () =>
      acme('POST', '/api/v1/users?activate=true', {
        body: { profile: { ...profileFor('alice2'), login: alice.login.toUpperCase() } },
      }),
    expectError(400, 'E0000001'),
  );
});

test('bad query parameters: 400', async () => {
  for (const query of ['limit=abc', 'limit=-1']) {
    expectError(400, 'E0000001')(await acme('GET', `/api/v1/users?${query}`));
  }
  for (const query of ['filter=status%20eq', 'search=(((']) {
    const res = await acme('GET', `/api/v1/users?${query}`);
    assert.equal(res.status, 400, `${query}: ${res.status} ${res.text}`);
  }
  for (const query of ['since=yesterday', 'limit=abc', 'sortOrder=SIDEWAYS']) {
    const res = await acme('GET', `/api/v1/logs?${query}`);
    assert.equal(res.status, 400, `${query}: ${res.status} ${res.text}`);
  }
});

test("another tenant's user id: 404, and nothing changes", async () => {
  const check = expectError(404, 'E0000007');
  await unchanged(() => globex('GET', `/api/v1/users/${alice.id}`), check);
  await unchanged(() => globex('GET', `/api/v1/users/${encodeURIComponent(alice.login)}`), check);
  await unchanged(
    () => globex('POST', `/api/v1/users/${alice.id}`, { body: { profile: { firstName: 'Mallory' } } }),
    check,
  );
  await unchanged(() => globex('PUT', `/api/v1/users/${alice.id}`, { body: { profile: alice.profile } }), check);
  await unchanged(() => globex('DELETE', `/api/v1/users/${alice.id}`), check);
  for (const op of ['deactivate', 'suspend', 'unlock', 'reset_password', 'reset_factors']) {
    await unchanged(() => globex('POST', `/api/v1/users/${alice.id}/lifecycle/${op}?sendEmail=false`), check);
  }
  await unchanged(() => globex('GET', `/api/v1/users/${alice.id}/factors`), check);
  await unchanged(
    () =>
      globex('POST', `/api/v1/users/${alice.id}/factors`, {
        body: { factorType: 'token:software:totp', provider: 'GOOGLE' },
      }),
    check,
  );
  // And the other way round, including adding bob to an acme group.
  await unchanged(() => acme('GET', `/api/v1/users/${bob.id}`), check);
  const groups = await acme('GET', '/api/v1/groups');
  await unchanged(() => acme('PUT', `/api/v1/groups/${groups.json[0].id}/users/${bob.id}`), check);
  await unchanged(() => globex('GET', `/api/v1/groups/${groups.json[0].id}`), check);
  // Lists of one tenant never show the other's users.
  const list = await globex('GET', '/api/v1/users?limit=200');
  assert.deepEqual(list.json.map((u) => u.id), [bob.id]);
});

test('an unknown tenant: 404', async () => {
  const { token } = server.tenant('acme');
  for (const [method, path] of [
    ['GET', '/t/nosuch/api/v1/users'],
    ['GET', `/t/nosuch/api/v1/users/${alice.id}`],
    ['POST', '/t/nosuch/api/v1/authn'],
    ['GET', '/t/nosuch/api/v1/logs'],
  ]) {
    await unchanged(
      () =>
        request(server.baseUrl + path, {
          method,
          token,
          body: method === 'POST' ? { username: alice.login, password: PASSWORD } : undefined,
        }),
      expectError(404, 'E0000007'),
    );
  }
});

test('a missing or invalid API token: 401 E0000011', async () => {
  const acmeInfo = server.tenant('acme');
  const globexInfo = server.tenant('globex');
  const body = { profile: profileFor('intruder') };
  const attempts = [
    {},
    { Authorization: `SSWS ${acmeInfo.token}x` },
    { Authorization: `SSWS ${acmeInfo.token.slice(0, -1)}` },
    { Authorization: 'SSWS ' },
    { Authorization: `Bearer ${acmeInfo.token}` },
    { Authorization: acmeInfo.token },
    // A real token, of another tenant.
    { Authorization: `SSWS ${globexInfo.token}` },
  ];
  for (const headers of attempts) {
    for (const [method, path, b] of [
      ['GET', '/api/v1/users'],
      ['POST', '/api/v1/users?activate=true', body],
      ['GET', `/api/v1/users/${alice.id}`],
      ['DELETE', `/api/v1/users/${alice.id}`],
      ['GET', '/api/v1/logs'],
    ]) {
      await unchanged(
        () => request(acmeInfo.orgUrl + path, { method, token: null, headers, body: b }),
        expectError(401, 'E0000011'),
      );
    }
  }
});
