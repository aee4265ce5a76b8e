// Crash safety of the verifiable System Log. `custos serve` is killed with SIGKILL, 20 times,
// while clients create users as fast as they can. After each restart on the same data directory:
//   (a) every event whose request got an HTTP answer is in the store exactly once, no event is
//       there twice, and the store has as many users as user create events;
//   (b) the tenant's log covers every event of the tenant and `custos log verify` accepts it; its
//       state file carries over from run to run, so it also checks the new tree against the
//       checkpoint it verified before the crash;
//   (c) every checkpoint a client saw before the crash is validly signed and is a prefix of the new
//       tree: the server's consistency proof is checked here (RFC 9162, without Custos code).
//
// CRASH_CYCLES (default 20) and CRASH_SEED (default random; printed) steer a run. KEEP_E2E_DATA=1
// keeps the data directory; a failure keeps it too and prints the server's output.

import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { createHash, createPublicKey, verify as verifySignature } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import {
  FAST_HASHING,
  NO_SIGNIN_RATE_LIMIT,
  createDataDir,
  custosBin,
  removeDataDir,
  repoRoot,
  sleep,
  sqlDialect,
  sqlRows,
  storeUrl,
  withStore,
} from './lib/server.mjs';

const execFileP = promisify(execFile);

const CYCLES = Number(process.env.CRASH_CYCLES || 20);
const SEED = Number(process.env.CRASH_SEED || Math.floor(Math.random() * 2 ** 31));
const CLIENTS = 24;
const KILL_AFTER_MS = [200, 800];
const CHECKPOINT_POLL_MS = 20;
const CATCH_UP_TIMEOUT_MS = 30_000;
const START_TIMEOUT_MS = 30_000;
const TENANT = 'crash';
const SETTINGS = {
  ...FAST_HASHING,
  ...NO_SIGNIN_RATE_LIMIT,
  'system_log.sequence_interval': '20ms',
};

// The servers and tools see none of the CUSTOS_* settings of the calling shell.
const childEnv = Object.fromEntries(
  Object.entries(process.env).filter(([key]) => !key.startsWith('CUSTOS_')),
);

// mulberry32: the kill moments of a run follow from CRASH_SEED.
function seededRandom(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

// ---- RFC 9162 consistency proofs and C2SP signed notes, written from the specs ----

const sha256 = (...parts) => createHash('sha256').update(Buffer.concat(parts)).digest();
const nodeHash = (left, right) => sha256(Buffer.from([1]), left, right);

// RFC 9162 section 2.1.4.2. `proof` is an array of Buffers. Sizes stay far below 2^31 here.
function consistent(size1, size2, root1, root2, proof) {
  if (size1 < 1 || size1 > size2) return false;
  if (size1 === size2) return proof.length === 0 && root1.equals(root2);
  if (![root1, root2, ...proof].every((h) => h.length === 32)) return false;
  const path = (size1 & (size1 - 1)) === 0 ? [root1, ...proof] : [...proof];
  if (path.length === 0) return false;
  let fn = size1 - 1;
  let sn = size2 - 1;
  while (fn & 1) {
    fn >>>= 1;
    sn >>>= 1;
  }
  let fr = path[0];
  let sr = path[0];
  for (const c of path.slice(1)) {
    if (sn === 0) return false;
    if (fn & 1 || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      while (!(fn & 1) && fn !== 0) {
        fn >>>= 1;
        sn >>>= 1;
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn >>>= 1;
    sn >>>= 1;
  }
  return fr.equals(root1) && sr.equals(root2) && sn === 0;
}

// A C2SP vkey `<name>+<key id hex>+<base64(0x01 || Ed25519 public key)>`.
function parseVerifierKey(vkey) {
  // The name holds no '+'; the base64 key may.
  const [, name, idHex, keyB64] = /^([^+]+)\+([0-9a-f]{8})\+(.+)$/.exec(vkey) ?? [];
  assert.ok(keyB64, `not a vkey: ${vkey}`);
  const raw = Buffer.from(keyB64, 'base64');
  assert.equal(raw[0], 1, `vkey ${vkey} is not Ed25519`);
  const id = sha256(Buffer.from(`${name}\n`), raw).subarray(0, 4);
  assert.equal(id.toString('hex'), idHex, `key id of ${vkey}`);
  const publicKey = createPublicKey({
    key: { kty: 'OKP', crv: 'Ed25519', x: raw.subarray(1).toString('base64url') },
    format: 'jwk',
  });
  return { name, id, publicKey };
}

// Whether some signature line of `note` verifies with one of `keys`.
function signedByOneOf(note, keys) {
  const split = note.lastIndexOf('\n\n');
  if (split < 0) return false;
  const text = Buffer.from(note.slice(0, split + 1));
  for (const line of note.slice(split + 2).split('\n')) {
    const m = /^\u2014 (\S+) (\S+)$/.exec(line);
    if (!m) continue;
    const sig = Buffer.from(m[2], 'base64');
    for (const key of keys) {
      if (key.name === m[1] && sig.length === 68 && sig.subarray(0, 4).equals(key.id) &&
          verifySignature(null, text, key.publicKey, sig.subarray(4))) {
        return true;
      }
    }
  }
  return false;
}

// The tlog-checkpoint body of a note: origin, size, root.
function parseCheckpoint(note) {
  const [origin, size, root] = note.split('\n');
  assert.match(size, /^(0|[1-9]\d*)$/, `checkpoint size in ${JSON.stringify(note)}`);
  return { origin, size: Number(size), rootB64: root, root: Buffer.from(root, 'base64'), note };
}

// ---- a server on a data directory that outlives it ----

// The last bytes a server printed, kept across restarts for a failure report.
class Tail {
  constructor(limit) {
    this.limit = limit;
    this.text = '';
  }

  push(chunk) {
    this.text = (this.text + chunk).slice(-this.limit);
  }
}

const running = new Set();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

// Starts `custos serve` on `dataDir` and resolves once it listens.
async function serve(dataDir, output) {
  const args = withStore(['serve', '--data-dir', dataDir, '--listen', '127.0.0.1', '--port', '0',
    ...Object.entries(SETTINGS).flatMap(([k, v]) => ['--set', `${k}=${v}`])]);
  const child = spawn(custosBin, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: childEnv,
    cwd: dataDir,
  });
  running.add(child);
  const exited = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      running.delete(child);
      resolve({ code, signal });
    });
  });
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (c) => output.push(c));
  const baseUrl = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`custos did not listen within ${START_TIMEOUT_MS} ms`));
    }, START_TIMEOUT_MS);
    let seen = '';
    child.stdout.on('data', (c) => {
      output.push(c);
      seen += c;
      const m = /custos listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(seen);
      if (m) {
        clearTimeout(timer);
        seen = '';
        resolve(m[1]);
      }
    });
    child.on('error', reject);
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`custos exited before listening (code ${code}, signal ${signal})`));
    });
  });
  return { child, exited, baseUrl };
}

// Rows of `query` from the store of `data` (read-only on SQLite).
const sql = (data, query) => sqlRows(data, query);

// What the kill left behind, read without recovering the store (read-only): how many of the
// tenant's events were committed, how many had a log position, and the size of the stored tree and
// of its latest checkpoint. Only for the cycle's summary: it shows which recovery path ran.
async function crashState(data, tenantId) {
  try {
    const [s] = await sql(data,
      `SELECT (SELECT COUNT(*) FROM events WHERE tenant_id = '${tenantId}') AS events, ` +
      `(SELECT COUNT(*) FROM log_entries WHERE log_id = '${tenantId}') AS placed, ` +
      `(SELECT size FROM log_states WHERE log_id = '${tenantId}') AS tree, ` +
      `(SELECT MAX(size) FROM log_checkpoints WHERE log_id = '${tenantId}') AS signed`);
    return `${s.events} events, ${s.placed} placed, tree ${s.tree}, signed ${s.signed}`;
  } catch (err) {
    return `store unreadable read-only (${err.message.split('\n')[0]})`;
  }
}


// ---- one crash cycle ----

// CLIENTS clients create staged users (one event each) back to back on `orgUrl`, and a poller
// reads the log's checkpoint, until the server gets SIGKILL `killAfter` ms in. Adds the request id
// of every answered request to `answered`; returns the checkpoints seen and how many were answered.
async function appendUntilKilled(server, { orgUrl, auth, killAfter, answered, nextLogin }) {
  let killed = false;
  const statuses = new Map();
  const failures = [];  // before the kill, every request must get its answer
  const seen = new Map();  // "size root" -> checkpoint
  const before = answered.size;
  const fail = (what, err) => {
    if (!killed) failures.push(`${what}: ${err.cause?.code ?? err.message}`);
  };
  const client = async () => {
    while (!killed) {
      const login = nextLogin();
      let res;
      try {
        res = await fetch(`${orgUrl}/api/v1/users?activate=false`, {
          method: 'POST',
          headers: { ...auth, 'Content-Type': 'application/json', Accept: 'application/json' },
          body: JSON.stringify({ profile: { firstName: 'C', lastName: 'Rash', email: login, login } }),
        });
      } catch (err) {
        return fail('POST user', err);
      }
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      // The status line and headers arrived: the server answered, so the event must be durable.
      if (res.status === 200) answered.add(res.headers.get('x-request-id'));
      await res.arrayBuffer().catch(() => {});
    }
  };
  const poller = async () => {
    while (!killed) {
      try {
        const res = await fetch(`${orgUrl}/log/checkpoint`, { headers: auth });
        const text = await res.text();
        if (res.status === 200) {
          const cp = parseCheckpoint(text);
          seen.set(`${cp.size} ${cp.rootB64}`, cp);
        } else if (res.status !== 404) {
          failures.push(`GET checkpoint: ${res.status} ${text}`);
        }
      } catch (err) {
        return fail('GET checkpoint', err);
      }
      await sleep(CHECKPOINT_POLL_MS);
    }
  };

  const load = [poller(), ...Array.from({ length: CLIENTS }, client)];
  await sleep(killAfter);
  killed = true;
  server.child.kill('SIGKILL');
  const exit = await server.exited;
  await Promise.all(load);
  assert.equal(exit.signal, 'SIGKILL', `custos ended before the kill: ${JSON.stringify(exit)}`);
  assert.deepEqual(failures, [], 'requests failed before the kill');
  assert.deepEqual([...statuses.keys()], [200], `answers: ${JSON.stringify([...statuses])}`);
  assert.ok(answered.size > before, 'no request was answered before the kill');
  return { seen: [...seen.values()], answeredNow: answered.size - before };
}

// Waits until the latest checkpoint covers every event of the tenant; returns both.
async function waitUntilLogged({ logUrl, auth, data, tenantId }) {
  const deadline = Date.now() + CATCH_UP_TIMEOUT_MS;
  for (;;) {
    const [{ n: events }] = await sql(data,
      `SELECT COUNT(*) AS n FROM events WHERE tenant_id = '${tenantId}'`);
    const res = await fetch(`${logUrl}/checkpoint`, { headers: auth });
    const text = await res.text();
    const checkpoint = res.status === 200 ? parseCheckpoint(text) : undefined;
    if (checkpoint?.size === events) return { events, checkpoint };
    assert.ok(!(checkpoint?.size > events),
      `the latest checkpoint covers ${checkpoint?.size} entries, the store has ${events} events`);
    assert.ok(Date.now() < deadline, `after ${CATCH_UP_TIMEOUT_MS} ms the latest checkpoint ` +
      `covers ${checkpoint?.size ?? 'none'} of the ${events} events`);
    await sleep(50);
  }
}

// (a) Every answered request's event is in the store exactly once, no request has two events,
// each user has its create event and each create event its user, and the log has a position for
// every event of the tenant and for nothing else.
async function checkEvents({ data, tenantId, answered, events }) {
  const rows = await sql(data,
    `SELECT ${sqlDialect.jsonText('json', 'transaction', 'id')} AS rid, COUNT(*) AS n FROM events ` +
    `WHERE tenant_id = '${tenantId}' GROUP BY rid`);
  const counts = new Map(rows.map((r) => [r.rid, r.n]));
  const missing = [...answered].filter((id) => !counts.has(id));
  assert.deepEqual(missing.slice(0, 10), [], `${missing.length} answered requests have no event`);
  const twice = rows.filter((r) => r.rid !== null && r.n > 1);
  assert.deepEqual(twice.slice(0, 10), [], `${twice.length} requests have more than one event`);

  const t = `'${tenantId}'`;
  const [s] = await sql(data,
    `SELECT (SELECT COUNT(*) FROM users WHERE tenant_id = ${t}) AS users, ` +
    `(SELECT COUNT(*) FROM events WHERE tenant_id = ${t} ` +
    `  AND event_type = 'user.lifecycle.create') AS creates, ` +
    `(SELECT COUNT(*) FROM log_entries WHERE log_id = ${t}) AS entries, ` +
    `(SELECT COUNT(DISTINCT seq) FROM log_entries WHERE log_id = ${t}) AS seqs, ` +
    `(SELECT MAX(log_index) + 1 FROM log_entries WHERE log_id = ${t}) AS size, ` +
    `(SELECT COUNT(*) FROM events e JOIN log_entries l ON l.seq = e.seq ` +
    `  WHERE e.tenant_id = ${t} AND l.log_id = ${t}) AS placed`);
  assert.equal(s.creates, s.users, 'users and their create events');
  assert.deepEqual({ entries: s.entries, seqs: s.seqs, size: s.size, placed: s.placed },
    { entries: events, seqs: events, size: events, placed: events }, 'log positions of the events');
}

// (b) `custos log verify` with the state file of the previous run; returns its summary line.
async function verifyLog({ logUrl, origin, token, statePath, stateHome, events }) {
  let out;
  try {
    out = await execFileP(custosBin,
      // The server restarts on a new port each cycle; the log keeps the origin of its first start.
      withStore(['log', 'verify', logUrl, '--origin', origin, '--token', token, '--state', statePath]),
      { env: { ...childEnv, XDG_STATE_HOME: stateHome }, timeout: 60_000 });
  } catch (err) {
    assert.fail(`custos log verify failed (exit ${err.code ?? err.signal}):\n${err.stderr}${err.stdout}`);
  }
  const line = out.stdout.trim().split('\n').pop();
  assert.match(line, new RegExp(`^verified \\S+: size ${events}, `));
  return line;
}

// (c) Each checkpoint seen before the crash is signed by the server's key and is a prefix of the
// tree of `latest`, as the server's consistency proof shows.
async function checkSeenCheckpoints({ logUrl, auth, keys, seen, latest }) {
  assert.ok(signedByOneOf(latest.note, keys), `latest checkpoint not signed:\n${latest.note}`);
  for (const old of seen) {
    const what = `checkpoint ${old.size} ${old.rootB64} seen before the crash`;
    assert.ok(signedByOneOf(old.note, keys), `${what} is not signed:\n${old.note}`);
    assert.equal(old.origin, latest.origin, `origin of the ${what}`);
    assert.ok(old.size <= latest.size, `${what}, and now the log has ${latest.size} entries`);
    if (old.size === latest.size) {
      assert.equal(old.rootB64, latest.rootB64, `${what}: now the root of ${old.size} differs`);
      continue;
    }
    const res = await fetch(`${logUrl}/proof/consistency?from=${old.size}&to=${latest.size}`,
      { headers: auth });
    const body = await res.json();
    assert.equal(res.status, 200, `consistency proof: ${JSON.stringify(body)}`);
    const proof = body.hashes.map((h) => Buffer.from(h, 'base64'));
    assert.ok(consistent(old.size, latest.size, old.root, latest.root, proof),
      `${what} is not consistent with ${latest.size} ${latest.rootB64}`);
    // A different old root must not pass: the proof is checked, not just accepted.
    assert.ok(!consistent(old.size, latest.size, sha256(old.root), latest.root, proof));
  }
}

// ---- the tests ----

test('the JS proof and note checks agree with the published vectors', async () => {
  const dir = path.join(repoRoot, 'tests/testdata/rfc6962/consistency');
  let checked = 0;
  for (const sub of await readdir(dir)) {
    for (const file of await readdir(path.join(dir, sub))) {
      const v = JSON.parse(await readFile(path.join(dir, sub, file), 'utf8'));
      const b = (s) => Buffer.from(s ?? '', 'base64');
      const got = consistent(v.size1, v.size2, b(v.root1), b(v.root2), (v.proof ?? []).map(b));
      assert.equal(got, !v.wantErr, `${sub}/${file}: ${v.desc}`);
      checked += 1;
    }
  }
  assert.ok(checked > 90, `only ${checked} vectors`);

  const key = parseVerifierKey(
    'example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k');
  const note = 'This is an example message.\n\n\u2014 example.com/foo ' +
    'Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n';
  assert.ok(signedByOneOf(note, [key]));
  assert.ok(!signedByOneOf(note.replace('example message', 'example massage'), [key]));
});

test(`${CYCLES} kill -9 during heavy appends lose, duplicate and fork nothing`,
  { timeout: 300_000 }, async (t) => {
    const random = seededRandom(SEED);
    const data = await createDataDir({ tenants: [TENANT] });
    const { dataDir } = data;
    const [{ id: tenantId, token }] = data.tenants;
    const statePath = path.join(dataDir, 'verify-state.json');
    const output = new Tail(16_384);
    const auth = { Authorization: `SSWS ${token}` };
    const answered = new Set();  // X-Request-Id of every request that got its answer
    let logins = 0;
    const nextLogin = () => `u${(logins += 1)}@crash.test`;
    t.diagnostic(`CRASH_SEED=${SEED}`);

    const started = Date.now();
    let server;
    let firstOrigin;
    let ok = false;
    try {
      server = await serve(dataDir, output);
      const keysRes = await fetch(`${server.baseUrl}/.well-known/custos/log-keys`);
      assert.equal(keysRes.status, 200);
      // Trusted on first use, before any crash.
      const keys = (await keysRes.text()).split('\n').filter(Boolean).map(parseVerifierKey);

      for (let cycle = 1; cycle <= CYCLES; cycle += 1) {
        const cycleStart = Date.now();
        const [low, high] = KILL_AFTER_MS;
        const killAfter = Math.round(low + random() * (high - low));
        const { seen, answeredNow } = await appendUntilKilled(server, {
          orgUrl: `${server.baseUrl}/t/${TENANT}`, auth, killAfter, answered, nextLogin,
        });
        const atKill = await crashState(data, tenantId);

        const restartStart = Date.now();
        server = await serve(dataDir, output);
        const restartMs = Date.now() - restartStart;
        const logUrl = `${server.baseUrl}/t/${TENANT}/log`;
        const { events, checkpoint } = await waitUntilLogged({ logUrl, auth, data, tenantId });
        await checkEvents({ data, tenantId, answered, events });
        const verifyStart = Date.now();
        firstOrigin ??= checkpoint.origin;
        await verifyLog({ logUrl, origin: firstOrigin, token, statePath, stateHome: dataDir, events });
        const verifyMs = Date.now() - verifyStart;
        await checkSeenCheckpoints({ logUrl, auth, keys, seen, latest: checkpoint });

        const largest = Math.max(0, ...seen.map((c) => c.size));
        t.diagnostic(`cycle ${cycle}: kill at ${killAfter} ms, ${answeredNow} answered, ` +
          `${seen.length} checkpoints seen (largest ${largest}); at the kill ${atKill}; ` +
          `restart ${restartMs} ms; ${events} events, checkpoint ${checkpoint.size}, ` +
          `verify ${verifyMs} ms; cycle ${Date.now() - cycleStart} ms`);
      }
      t.diagnostic(`${CYCLES} cycles, ${answered.size} answered requests, ${Date.now() - started} ms`);
      ok = true;
    } catch (err) {
      const database = storeUrl(dataDir) ? `, database ${storeUrl(dataDir)}` : '';
      process.stderr.write(`\n=== custos output (CRASH_SEED=${SEED}; data kept in ${dataDir}${database})\n` +
        `${output.text}\n===\n`);
      throw err;
    } finally {
      if (server && running.has(server.child)) {
        server.child.kill('SIGTERM');
        const timer = setTimeout(() => server.child.kill('SIGKILL'), 30_000);
        await server.exited;
        clearTimeout(timer);
      }
      if (ok) await removeDataDir(data);
    }
  });
