// The management API as its official client sees it: the Okta Node SDK (v8) pointed at
// http://127.0.0.1:PORT/t/acme as its org URL, plus a System Log poller written with fetch.

import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import okta from '@okta/okta-sdk-nodejs';
import { request, serverTest, sleep, startServer } from './lib/server.mjs';

const PASSWORD = 'plum-Violin-Orbit-2291';

let server;
const test = serverTest(() => server);

// The SDK caches GET responses by URL; tests read after writes, so they run without that cache.
function newClient(tenant = 'acme') {
  const info = server.tenant(tenant);
  return new okta.Client({ orgUrl: info.orgUrl, token: info.token, cacheMiddleware: null });
}

let serial = 0;
function newProfile(prefix, lastName = 'Tester') {
  serial += 1;
  const login = `${prefix}.${serial}.${Date.now()}@example.com`;
  return { firstName: `${prefix}${serial}`, lastName, email: login, login };
}

async function assertApiError(promise, status, errorCode) {
  await assert.rejects(promise, (err) => {
    assert.equal(err.status, status, `status of ${err.message}`);
    if (errorCode) assert.equal(err.errorCode, errorCode, err.message);
    return true;
  });
}

async function collect(collection) {
  const items = [];
  for await (const item of collection) {
    // The SDK yields null when a page comes back empty but still links to a next one.
    if (item === null) break;
    items.push(item);
  }
  return items;
}

before(async () => {
  server = await startServer({ tenants: ['acme', 'poll'] });
});

after(async () => {
  if (!server) return;
  const status = await server.stop();
  assert.equal(status.killed, false, `custos ignored SIGTERM for ${status.ms} ms`);
  assert.equal(status.code, 0, `custos exit status after SIGTERM: ${JSON.stringify(status)}`);
});

test('creates, reads, updates and replaces a user', async () => {
  const client = newClient();
  const profile = newProfile('ada', 'Lovelace');
  const created = await client.userApi.createUser({
    body: { profile, credentials: { password: { value: PASSWORD } } },
    activate: true,
  });
  assert.match(created.id, /^\S+$/);
  assert.equal(created.status, 'ACTIVE');
  assert.equal(created.profile.login, profile.login);
  assert.equal(created.profile.email, profile.email);
  assert.ok(created.created instanceof Date && !Number.isNaN(created.created.getTime()));
  // The password never comes back, not even hashed.
  assert.doesNotMatch(JSON.stringify(created), /plum-Violin|argon2/i);

  const byId = await client.userApi.getUser({ userId: created.id });
  assert.equal(byId.id, created.id);
  assert.equal(byId.profile.firstName, profile.firstName);
  const byLogin = await client.userApi.getUser({ userId: profile.login });
  assert.equal(byLogin.id, created.id);

  // POST is a partial update: untouched properties stay.
  const updated = await client.userApi.updateUser({
    userId: created.id,
    user: { profile: { title: 'Analyst', department: 'Engines' } },
  });
  assert.equal(updated.profile.title, 'Analyst');
  assert.equal(updated.profile.department, 'Engines');
  assert.equal(updated.profile.firstName, profile.firstName);
  assert.equal(updated.profile.login, profile.login);
  assert.equal((await client.userApi.getUser({ userId: created.id })).profile.title, 'Analyst');

  // PUT replaces the whole profile: what is not sent is gone.
  const replaced = await client.userApi.replaceUser({
    userId: created.id,
    user: { profile: { ...profile, firstName: 'Augusta' } },
  });
  assert.equal(replaced.profile.firstName, 'Augusta');
  assert.equal(replaced.profile.title, undefined);
  assert.equal(replaced.profile.department, undefined);
  const reread = await client.userApi.getUser({ userId: created.id });
  assert.equal(reread.profile.firstName, 'Augusta');
  assert.equal(reread.profile.title, undefined);

  await assertApiError(client.userApi.getUser({ userId: 'nobody@example.com' }), 404, 'E0000007');
});

test('staged users are activated through the lifecycle API', async () => {
  const client = newClient();
  const withPassword = await client.userApi.createUser({
    body: { profile: newProfile('staged'), credentials: { password: { value: PASSWORD } } },
    activate: false,
  });
  assert.equal(withPassword.status, 'STAGED');
  await client.userApi.activateUser({ userId: withPassword.id, sendEmail: false });
  assert.equal((await client.userApi.getUser({ userId: withPassword.id })).status, 'ACTIVE');

  // Without a password the user is PROVISIONED and the admin gets a one-time activation token.
  const noPassword = await client.userApi.createUser({
    body: { profile: newProfile('invited') },
    activate: false,
  });
  const issued = await client.userApi.activateUser({ userId: noPassword.id, sendEmail: false });
  assert.match(issued.activationToken ?? '', /^\S{16,}$/, JSON.stringify(issued));
  assert.equal((await client.userApi.getUser({ userId: noPassword.id })).status, 'PROVISIONED');
});

test('lists every user exactly once across pages', async () => {
  const client = newClient();
  const created = [];
  for (let i = 0; i < 7; i += 1) {
    const user = await client.userApi.createUser({
      body: { profile: newProfile('pager', 'Pager') },
      activate: false,
    });
    created.push(user.id);
  }

  const urls = [];
  client.requestExecutor.on('request', (req) => urls.push(req.url));
  const seen = (await collect(await client.userApi.listUsers({ limit: 3 }))).map((u) => u.id);
  const pages = urls.filter((u) => u.includes('/api/v1/users')).length;
  assert.ok(pages >= 3, `expected at least 3 pages of 3, the SDK fetched ${pages}: ${urls}`);
  const counts = new Map();
  for (const id of seen) counts.set(id, (counts.get(id) ?? 0) + 1);
  const repeated = [...counts].filter(([, n]) => n > 1);
  assert.deepEqual(repeated, [], 'users listed more than once');
  for (const id of created) assert.ok(counts.has(id), `user ${id} never listed`);
  assert.ok(urls.slice(1).every((u) => u.includes('after=')), `next pages use the cursor: ${urls}`);

  // q (prefix of names, login, email), search and filter each find exactly the pager users.
  const byQ = await collect(await client.userApi.listUsers({ q: 'pager', limit: 2 }));
  assert.deepEqual(byQ.map((u) => u.id).sort(), [...created].sort());
  const bySearch = await collect(
    await client.userApi.listUsers({ search: 'profile.lastName eq "Pager"', limit: 4 }),
  );
  assert.deepEqual(bySearch.map((u) => u.id).sort(), [...created].sort());
  const staged = await collect(
    await client.userApi.listUsers({ filter: 'status eq "STAGED"', limit: 200 }),
  );
  for (const id of created) assert.ok(staged.some((u) => u.id === id), `${id} is STAGED`);
  assert.ok(staged.every((u) => u.status === 'STAGED'));
});

test('deactivates, then deletes a user', async () => {
  const client = newClient();
  const user = await client.userApi.createUser({
    body: { profile: newProfile('gone'), credentials: { password: { value: PASSWORD } } },
    activate: true,
  });
  await client.userApi.deactivateUser({ userId: user.id });
  assert.equal((await client.userApi.getUser({ userId: user.id })).status, 'DEPROVISIONED');
  await client.userApi.deleteUser({ userId: user.id });
  await assertApiError(client.userApi.getUser({ userId: user.id }), 404, 'E0000007');

  // DELETE on a user who is not yet deactivated only deactivates; the second one deletes.
  const other = await client.userApi.createUser({
    body: { profile: newProfile('twice') },
    activate: true,
  });
  await client.userApi.deleteUser({ userId: other.id });
  assert.equal((await client.userApi.getUser({ userId: other.id })).status, 'DEPROVISIONED');
  await client.userApi.deleteUser({ userId: other.id });
  await assertApiError(client.userApi.getUser({ userId: other.id }), 404, 'E0000007');
  await assertApiError(client.userApi.deleteUser({ userId: other.id }), 404, 'E0000007');
});

test('groups: create, find, add and remove members, rename, delete', async () => {
  const client = newClient();
  const members = [];
  for (let i = 0; i < 3; i += 1) {
    members.push(
      await client.userApi.createUser({ body: { profile: newProfile('member') }, activate: true }),
    );
  }
  const name = `Engineering ${Date.now()}`;
  const group = await client.groupApi.createGroup({
    group: { profile: { name, description: 'Builds engines' } },
  });
  assert.match(group.id, /^\S+$/);
  assert.equal(group.profile.name, name);
  assert.equal((await client.groupApi.getGroup({ groupId: group.id })).profile.name, name);
  const found = await collect(await client.groupApi.listGroups({ q: 'Engineering', limit: 10 }));
  assert.ok(found.some((g) => g.id === group.id), 'q finds the group');

  for (const m of members) {
    await client.groupApi.assignUserToGroup({ groupId: group.id, userId: m.id });
  }
  // Adding a member twice is not an error and does not list them twice.
  await client.groupApi.assignUserToGroup({ groupId: group.id, userId: members[0].id });
  const listed = await collect(await client.groupApi.listGroupUsers({ groupId: group.id, limit: 2 }));
  assert.deepEqual(listed.map((u) => u.id).sort(), members.map((m) => m.id).sort());

  await client.groupApi.unassignUserFromGroup({ groupId: group.id, userId: members[1].id });
  const remaining = await collect(await client.groupApi.listGroupUsers({ groupId: group.id }));
  assert.deepEqual(
    remaining.map((u) => u.id).sort(),
    [members[0].id, members[2].id].sort(),
  );

  const renamed = await client.groupApi.replaceGroup({
    groupId: group.id,
    group: { profile: { name: `${name} (renamed)`, description: 'Still builds engines' } },
  });
  assert.equal(renamed.profile.name, `${name} (renamed)`);

  await client.groupApi.deleteGroup({ groupId: group.id });
  await assertApiError(client.groupApi.getGroup({ groupId: group.id }), 404, 'E0000007');
  // Members outlive their group.
  const survivor = await client.userApi.getUser({ userId: members[0].id });
  assert.equal(survivor.status, members[0].status);
});

test('the System Log shows what was just done, through the SDK', async () => {
  const client = newClient();
  const since = new Date(Date.now() - 2_000).toISOString();
  const user = await client.userApi.createUser({
    body: { profile: newProfile('logged') },
    activate: true,
  });
  await client.userApi.updateUser({ userId: user.id, user: { profile: { title: 'Audited' } } });
  const group = await client.groupApi.createGroup({
    group: { profile: { name: `Audit ${Date.now()}`, description: '' } },
  });
  await client.groupApi.assignUserToGroup({ groupId: group.id, userId: user.id });
  await client.groupApi.unassignUserFromGroup({ groupId: group.id, userId: user.id });
  await client.groupApi.deleteGroup({ groupId: group.id });
  await client.userApi.deactivateUser({ userId: user.id });
  await client.userApi.deleteUser({ userId: user.id });
  const until = new Date(Date.now() + 2_000).toISOString();

  const events = [];
  const collection = await client.systemLogApi.listLogEvents({
    since,
    until,
    limit: 4,
    sortOrder: 'ASCENDING',
  });
  // each() stops at the first empty page, as a bounded query ends.
  await collection.each((e) => {
    events.push(e);
  });
  const uuids = events.map((e) => e.uuid);
  assert.equal(new Set(uuids).size, uuids.length, 'no event twice');
  const times = events.map((e) => new Date(e.published).getTime());
  assert.deepEqual(times, [...times].sort((a, b) => a - b), 'ASCENDING order');

  const about = (id) =>
    events.filter((e) => (e.target ?? []).some((t) => t.id === id)).map((e) => e.eventType);
  const userEvents = about(user.id);
  for (const type of [
    'user.lifecycle.create',
    'user.lifecycle.activate',
    'user.account.update_profile',
    'group.user_membership.add',
    'group.user_membership.remove',
    'user.lifecycle.deactivate',
    'user.lifecycle.delete.completed',
  ]) {
    assert.ok(userEvents.includes(type), `${type} about the user; saw ${userEvents}`);
  }
  const groupEvents = about(group.id);
  for (const type of ['group.lifecycle.create', 'group.lifecycle.delete']) {
    assert.ok(groupEvents.includes(type), `${type} about the group; saw ${groupEvents}`);
  }
  const create = events.find(
    (e) => e.eventType === 'user.lifecycle.create' && e.target.some((t) => t.id === user.id),
  );
  assert.equal(create.outcome?.result, 'SUCCESS');
  assert.ok(create.actor?.id, 'the actor is named');

  // filter narrows to one type.
  const filtered = [];
  await (
    await client.systemLogApi.listLogEvents({
      since,
      until,
      filter: 'eventType eq "user.lifecycle.delete.completed"',
    })
  ).each((e) => {
    filtered.push(e);
  });
  assert.ok(filtered.length >= 1);
  assert.ok(filtered.every((e) => e.eventType === 'user.lifecycle.delete.completed'));
});

test('a poller following rel="next" sees every event exactly once', async () => {
  const info = server.tenant('poll');
  const create = (n) =>
    request(`${info.orgUrl}/api/v1/users?activate=false`, {
      method: 'POST',
      token: info.token,
      body: { profile: newProfile(`poll${n}`) },
    }).then((res) => {
      assert.equal(res.status, 200, res.text);
      return res.json.id;
    });
  const nextLink = (headers) => {
    const link = headers.get('link') ?? '';
    const m = /<([^>]+)>\s*;\s*rel="next"/.exec(link);
    return m ? m[1] : null;
  };

  const createdIds = [await create(0)];
  let url = `${info.orgUrl}/api/v1/logs?since=${encodeURIComponent(
    new Date(Date.now() - 60_000).toISOString(),
  )}&limit=3`;
  const seen = new Map();
  let polls = 0;
  let quietPolls = 0;
  // Rounds of writes run while the poller reads; then it polls until it has been quiet twice.
  for (let round = 1; quietPolls < 2; round += 1) {
    assert.ok(polls < 200, `the poller did not catch up after ${polls} polls`);
    const writes =
      round <= 6 ? Promise.all([create(round * 10), create(round * 10 + 1)]) : Promise.resolve([]);
    const res = await request(url, { token: info.token });
    polls += 1;
    assert.equal(res.status, 200, res.text);
    assert.ok(Array.isArray(res.json), res.text);
    for (const e of res.json) {
      assert.ok(!seen.has(e.uuid), `event ${e.uuid} (${e.eventType}) delivered twice`);
      seen.set(e.uuid, e);
    }
    const next = nextLink(res.headers);
    assert.ok(next, `a poll without until always links to a next page (poll ${polls})`);
    assert.match(next, /^http:\/\/127\.0\.0\.1:\d+\/t\/poll\/api\/v1\/logs\?/, 'absolute next link');
    url = next;
    createdIds.push(...(await writes));
    quietPolls = round > 6 && res.json.length === 0 ? quietPolls + 1 : 0;
    if (res.json.length === 0) await sleep(50);
  }

  const createdEvents = [...seen.values()].filter((e) => e.eventType === 'user.lifecycle.create');
  const targets = createdEvents.map((e) => e.target?.[0]?.id);
  for (const id of createdIds) {
    assert.equal(targets.filter((t) => t === id).length, 1, `create event of ${id} once`);
  }
  assert.equal(createdEvents.length, createdIds.length);
});
