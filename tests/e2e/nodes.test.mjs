// Two `custos serve` nodes on one PostgreSQL database, and the log sequencer's leader killed with
// SIGKILL under load. Runs only where a PostgreSQL server is given (CUSTOS_TEST_POSTGRES, as
// `make test` does through scripts/with-postgres.sh); skipped otherwise.
//
// Node A and node B share one database, one sealing key and one public base URL. Writers create
// users through both nodes at once; the node whose /metrics says it leads the sequencer
// (custos_log_sequencer_leader 1) is killed with SIGKILL midway, and the writers go on through
// the other. Then:
//   - the surviving node leads within seconds;
//   - a checkpoint signed after the takeover covers every event of the tenant's log: its size is
//     the log's event count, and each event has its own log index (0..size-1);
//   - every create that was answered 201 has exactly one user.lifecycle.create event, with a log
//     index, read back through the surviving node, and no event names a user that does not exist;
//   - `custos log verify` checks the tenant's log and the provider log end to end against their
//     signed checkpoints (every event included, one consistent tree: no fork);
//   - the killed node, started again on its data directory, serves and does not lead.
//
// KEEP_E2E_DATA=1 keeps the data directories and the database.

import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { custosBin, request, sleep } from './lib/server.mjs';

const execFileP = promisify(execFile);
const ADMIN_URL = process.env.CUSTOS_TEST_POSTGRES;
const PUBLIC_URL = 'http://custos-cluster.test';
const START_TIMEOUT_MS = 30_000;
const TAKEOVER_TIMEOUT_MS = 30_000;
const WRITERS = 4;

const childEnv = Object.fromEntries(
  Object.entries(process.env).filter(([key]) => !key.startsWith('CUSTOS_')),
);

function withDatabase(url, database) {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

async function psql(sql) {
  await execFileP('psql', [ADMIN_URL, '-v', 'ON_ERROR_STOP=1', '-qAtc', sql], { timeout: 60_000 });
}

async function custos(args, storeUrl, cwd) {
  const { stdout } = await execFileP(custosBin, [...args, '--set', `store.url=${storeUrl}`], {
    timeout: 60_000, env: childEnv, cwd,
  });
  return stdout.trim();
}

// One node: `custos serve` on `dataDir` and the shared database, on a free port.
async function startNode(name, dataDir, storeUrl) {
  const args = ['serve', '--data-dir', dataDir, '--listen', '127.0.0.1', '--port', '0',
    '--set', `store.url=${storeUrl}`,
    '--set', `server.public_base_url=${PUBLIC_URL}`,
    '--set', 'system_log.sequence_interval=100ms',
    '--set', 'password.argon2_memory_kib=1024', '--set', 'password.argon2_iterations=1',
    '--set', 'log.format=json'];
  const child = spawn(custosBin, args, { stdio: ['ignore', 'pipe', 'pipe'], env: childEnv, cwd: dataDir });
  let output = '';
  const keep = (chunk) => {
    output = (output + chunk).slice(-30_000);
  };
  child.stdout.setEncoding('utf8').on('data', keep);
  child.stderr.setEncoding('utf8').on('data', keep);
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  // With a public base URL the listening line prints that URL; the port is in the JSON log.
  const port = await new Promise((resolve, reject) => {
    const timer = setInterval(() => {
      const m = /"msg":"listening".*?"port":(\d+)/.exec(output);
      if (m) {
        clearInterval(timer);
        clearTimeout(deadline);
        resolve(Number(m[1]));
      }
    }, 50);
    const deadline = setTimeout(() => {
      clearInterval(timer);
      reject(new Error(`${name} did not start:\n${output}`));
    }, START_TIMEOUT_MS);
    exited.then((s) => {
      clearInterval(timer);
      clearTimeout(deadline);
      reject(new Error(`${name} exited before listening (${JSON.stringify(s)}):\n${output}`));
    });
  });
  return {
    name,
    dataDir,
    baseUrl: `http://127.0.0.1:${port}`,
    output: () => output,
    exited,
    kill9() {
      child.kill('SIGKILL');
      return exited;
    },
    stop() {
      child.kill('SIGTERM');
      return exited;
    },
  };
}

// 1 or 0 from the node's /metrics; null when the node does not answer.
async function leads(node) {
  try {
    const res = await fetch(`${node.baseUrl}/metrics`);
    const m = /^custos_log_sequencer_leader(?:\{[^}]*\})? (\d+)/m.exec(await res.text());
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

async function waitFor(what, fn, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

test('two nodes on one database: the sequencing node is killed under load, nothing is lost or forked',
  { skip: ADMIN_URL ? false : 'needs a PostgreSQL server (CUSTOS_TEST_POSTGRES; make test provides one)', timeout: 300_000 },
  async (t) => {
    const database = `custos_nodes_${process.pid}_${Date.now()}`;
    await psql(`CREATE DATABASE ${database} TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'`);
    const storeUrl = withDatabase(ADMIN_URL, database);
    const dirA = await mkdtemp(path.join(os.tmpdir(), 'custos-node-a-'));
    const dirB = await mkdtemp(path.join(os.tmpdir(), 'custos-node-b-'));
    const scratch = await mkdtemp(path.join(os.tmpdir(), 'custos-nodes-'));
    const nodes = [];
    let failed = true;
    try {
      // One tenant and token, made through node A's data directory; node B gets A's sealing key.
      await custos(['admin', 'create-tenant', 'acme', '--data-dir', dirA], storeUrl, scratch);
      const token = await custos(['admin', 'create-api-token', '--tenant', 'acme', '--data-dir', dirA, '--name', 'e2e'], storeUrl, scratch);
      const providerToken = await custos(['admin', 'create-provider-token', '--data-dir', dirA], storeUrl, scratch);
      await copyFile(path.join(dirA, 'seal.key'), path.join(dirB, 'seal.key'));

      const a = await startNode('node A', dirA, storeUrl);
      nodes.push(a);
      const b = await startNode('node B', dirB, storeUrl);
      nodes.push(b);

      const leaderStates = await waitFor('exactly one leading node', async () => {
        const states = [await leads(a), await leads(b)];
        return states[0] + states[1] === 1 ? states : null;
      }, TAKEOVER_TIMEOUT_MS);
      const leader = leaderStates[0] === 1 ? a : b;
      const follower = leader === a ? b : a;
      t.diagnostic(`${leader.name} leads the sequencer`);

      // ---- Load: writers create users through both nodes. ----
      const answered = [];  // user ids of creates answered 201
      const refusedOrLost = { count: 0 };
      let stop = false;
      let alive = [a, b];
      let serial = 0;
      const writer = async (w) => {
        while (!stop) {
          const node = alive[(serial++ + w) % alive.length];
          const n = serial;
          try {
            const res = await request(`${node.baseUrl}/t/acme/api/v1/users?activate=false`, {
              method: 'POST', token,
              body: { profile: { login: `u${w}-${n}@acme.example`, email: `u${w}-${n}@acme.example`, firstName: 'U', lastName: `${n}` } },
            });
            if (res.status === 200 || res.status === 201) {
              answered.push({ id: res.json.id, via: node.name });
            } else {
              refusedOrLost.count++;
            }
          } catch {
            refusedOrLost.count++;  // the killed node: no answer
          }
        }
      };
      const writers = Array.from({ length: WRITERS }, (_, w) => writer(w));

      await waitFor('answered writes through both nodes', () =>
        answered.filter((x) => x.via === leader.name).length >= 40 &&
        answered.filter((x) => x.via === follower.name).length >= 40, 60_000);
      const killedAt = Date.now();
      const killed = await leader.kill9();
      assert.equal(killed.signal, 'SIGKILL');
      alive = [follower];
      const beforeKill = answered.length;
      await waitFor(`${follower.name} to lead`, async () => (await leads(follower)) === 1, TAKEOVER_TIMEOUT_MS);
      const takeoverMs = Date.now() - killedAt;
      await waitFor('writes after the takeover', () => answered.length >= beforeKill + 80, 60_000);
      stop = true;
      await Promise.all(writers);
      t.diagnostic(`${answered.length} creates answered (${beforeKill} before the kill), ` +
        `${refusedOrLost.count} unanswered or refused; ${follower.name} led ${takeoverMs} ms after the kill`);

      // ---- The takeover signed everything: a checkpoint covers every event of the log. ----
      // Read every event of the tenant's log (the API pages them in commit order).
      const allEvents = async () => {
        const out = [];
        let next = `${follower.baseUrl}/t/acme/api/v1/logs?limit=1000`;
        for (;;) {
          const res = await request(next, { token });
          assert.equal(res.status, 200, res.text);
          out.push(...res.json);
          const link = (res.headers.get('link') ?? '').match(/<([^>]+)>;\s*rel="next"/);
          if (!link || res.json.length === 0) return out;
          next = link[1].replace(PUBLIC_URL, follower.baseUrl);
        }
      };
      const checkpointSize = async () => {
        const res = await fetch(`${follower.baseUrl}/t/acme/log/checkpoint`, { headers: { Authorization: `SSWS ${token}` } });
        return res.status === 200 ? Number((await res.text()).split('\n')[1]) : 0;
      };
      let events;
      let size;
      await waitFor('a checkpoint covering every event of the log', async () => {
        size = await checkpointSize();
        events = await allEvents();
        return size > 0 && size === events.length && events.every((e) => e.custos?.log?.index != null);
      }, 60_000).catch((err) => {
        throw new Error(`${err.message}: the latest checkpoint has size ${size}, the log ` +
          `${events?.length} events, ${events?.filter((e) => e.custos?.log?.index == null).length} ` +
          'of them without a log index (did the takeover sign nothing?)');
      });
      // One log position per event, 0..size-1, each taken once.
      const indexes = events.map((e) => e.custos.log.index);
      assert.equal(new Set(indexes).size, events.length, 'two events share a log index');
      assert.deepEqual([...indexes].sort((x, y) => x - y), events.map((_, i) => i),
        'the log indexes are not 0..size-1');
      assert.equal(await checkpointSize(), events.length, "the final checkpoint's size is the log's event count");

      // ---- Every answered create has exactly one event, sequenced; every event's user exists. ----
      const creates = events.filter((e) => e.eventType === 'user.lifecycle.create');
      const perUser = new Map();
      for (const e of creates) {
        const id = e.target.find((x) => x.type === 'User').id;
        perUser.set(id, [...(perUser.get(id) ?? []), e]);
      }
      for (const { id } of answered) {
        const mine = perUser.get(id) ?? [];
        assert.equal(mine.length, 1, `user ${id}: ${mine.length} create events`);
        assert.equal(typeof mine[0].custos?.log?.index, 'number', `user ${id}: the create event has no log index`);
      }
      for (const [id, mine] of perUser) {
        assert.equal(mine.length, 1, `user ${id} has ${mine.length} create events`);
        const one = await request(`${follower.baseUrl}/t/acme/api/v1/users/${id}`, { token });
        assert.equal(one.status, 200, `the event names user ${id}, who does not exist`);
      }
      assert.ok(perUser.size >= answered.length, 'creates that committed without an answer may add events, never remove');

      // ---- The logs verify end to end against their checkpoints (no fork, nothing missing). ----
      const verifyEnv = { ...childEnv, XDG_STATE_HOME: path.join(scratch, 'state') };
      const host = new URL(PUBLIC_URL).host;
      for (const [log, tok, origin] of [
        [`${follower.baseUrl}/t/acme/log`, token, `${host}/t/acme`],
        [`${follower.baseUrl}/provider/log`, providerToken, `${host}/provider`],
      ]) {
        const { stdout, stderr } = await execFileP(custosBin,
          ['log', 'verify', log, '--origin', origin, '--token', tok],
          { timeout: 120_000, env: verifyEnv, cwd: scratch }).catch((err) => {
          throw new Error(`custos log verify ${log} failed (exit ${err.code}):\n${err.stderr}${err.stdout}`);
        });
        t.diagnostic(`log verify ${origin}: ${stdout.trim() || stderr.trim().split('\n').pop()}`);
      }

      // ---- The killed node comes back as a follower. ----
      const again = await startNode(`${leader.name} (restarted)`, leader.dataDir, storeUrl);
      nodes.push(again);
      const ready = await fetch(`${again.baseUrl}/readyz`);
      assert.equal(ready.status, 200);
      await sleep(1500);
      assert.equal(await leads(again), 0, 'the restarted node does not take the lead back');
      assert.equal(await leads(follower), 1);
      failed = false;
    } finally {
      for (const node of nodes) {
        if (failed) process.stderr.write(`\n=== ${node.name} output\n${node.output()}\n`);
        await node.stop();
      }
      if (!failed && !process.env.KEEP_E2E_DATA) {
        await psql(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
        for (const dir of [dirA, dirB, scratch]) await rm(dir, { recursive: true, force: true });
      } else {
        process.stderr.write(`(kept: database ${database}, ${dirA}, ${dirB})\n`);
      }
    }
  });
