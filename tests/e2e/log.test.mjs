// The verifiable System Log as a customer checks it: signed checkpoints, inclusion and
// consistency proofs and tiles verified here with node:crypto alone (no Custos code), the
// tlog-proof file, who may read the log, a log past its first tile, and `custos log verify`
// catching a store edited behind the server's back (an event altered, deleted, reordered or
// inserted, a checkpoint re-signed, an older copy served: rollback and fork).

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before } from 'node:test';
import {
  copyDataDir,
  createDataDir,
  custosBin,
  removeDataDir,
  request,
  runAdmin,
  serveDataDir,
  serverTest,
  sleep,
  sqlDialect,
  sqlExec,
  startServer,
  withStore,
} from './lib/server.mjs';

const PASSWORD = 'cobalt-Meadow-Anchor-73';
const WRONG_PASSWORD = 'cobalt-Meadow-Anchor-74';
const FAST_LOG = Object.freeze({ 'system_log.sequence_interval': '50ms' });

let server; // every test but the tamper test
let tampered; // the server of the tamper test, whichever copy of the store it serves
let scratch; // temporary files of the CLI runs
const test = serverTest(() => [server, tampered]);

before(async () => {
  server = await startServer({ settings: FAST_LOG });
  scratch = await mkdtemp(path.join(os.tmpdir(), 'custos-e2e-log-'));
});

after(async () => {
  if (scratch && !process.env.KEEP_E2E_DATA) await rm(scratch, { recursive: true, force: true });
  if (!server) return;
  const status = await server.stop();
  assert.equal(status.code, 0, `custos exit status after SIGTERM: ${JSON.stringify(status)}`);
});

// --- Hashing, notes and proofs, written from RFC 9162, RFC 8785 and C2SP signed-note ---------

const sha256 = (...parts) => crypto.createHash('sha256').update(Buffer.concat(parts)).digest();
const leafHash = (entry) => sha256(Buffer.from([0x00]), Buffer.from(entry));
const nodeHash = (left, right) => sha256(Buffer.from([0x01]), left, right);
const b64 = (buf) => Buffer.from(buf).toString('base64');

// RFC 8785 for the values events hold (strings, small integers, booleans, null, arrays, objects):
// keys sorted by UTF-16 code units, which is what Array.prototype.sort does.
function jcs(value) {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(jcs).join(',')}]`;
  const keys = Object.keys(value).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${jcs(value[k])}`).join(',')}}`;
}

// MTH of RFC 9162 section 2.1.1 over leaf hashes.
function rootOf(leaves) {
  if (leaves.length === 1) return leaves[0];
  let k = 1;
  while (k * 2 < leaves.length) k *= 2;
  return nodeHash(rootOf(leaves.slice(0, k)), rootOf(leaves.slice(k)));
}

// RFC 9162 section 2.1.3.2.
function rootFromInclusionProof(index, size, leaf, proof) {
  assert.ok(index < size, `index ${index} < size ${size}`);
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  for (const p of proof) {
    assert.notEqual(sn, 0, 'inclusion proof longer than the tree is high');
    if (fn % 2 === 1 || fn === sn) {
      r = nodeHash(p, r);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  assert.equal(sn, 0, 'inclusion proof shorter than the tree is high');
  return r;
}

// RFC 9162 section 2.1.4.2; throws unless the proof links both roots.
function verifyConsistency(first, second, firstRoot, secondRoot, proof) {
  assert.ok(first > 0 && first < second, `sizes ${first} < ${second}`);
  assert.ok(proof.length > 0, 'empty consistency proof');
  const path = (first & (first - 1)) === 0 ? [firstRoot, ...proof] : [...proof];
  let fn = first - 1;
  let sn = second - 1;
  while (fn % 2 === 1) {
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  let fr = path[0];
  let sr = path[0];
  for (const c of path.slice(1)) {
    assert.notEqual(sn, 0, 'consistency proof too long');
    if (fn % 2 === 1 || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      while (fn % 2 === 0 && fn !== 0) {
        fn = Math.floor(fn / 2);
        sn = Math.floor(sn / 2);
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  assert.equal(sn, 0, 'consistency proof too short');
  assert.equal(b64(fr), b64(firstRoot), 'the proof does not lead to the older root');
  assert.equal(b64(sr), b64(secondRoot), 'the proof does not lead to the newer root');
}

// C2SP signed-note key id: the first 4 bytes of SHA-256(name || "\n" || 0x01 || public key).
const keyIdOf = (name, publicKey) =>
  sha256(Buffer.from(`${name}\n`), Buffer.from([0x01]), publicKey).subarray(0, 4);

// `<name>+<8 hex key id>+<base64(0x01 || key)>`.
function parseVkey(vkey) {
  const m = /^([^+\s]+)\+([0-9a-f]{8})\+([A-Za-z0-9+/=]+)$/.exec(vkey);
  assert.ok(m, `vkey format: ${vkey}`);
  const raw = Buffer.from(m[3], 'base64');
  assert.equal(raw.length, 33, `vkey ${vkey}: 1 + 32 bytes`);
  assert.equal(raw[0], 0x01, `vkey ${vkey}: algorithm byte 0x01 (Ed25519)`);
  const publicKey = raw.subarray(1);
  assert.equal(keyIdOf(m[1], publicKey).toString('hex'), m[2], `key id of ${vkey}`);
  const key = crypto.createPublicKey({
    key: { kty: 'OKP', crv: 'Ed25519', x: publicKey.toString('base64url') },
    format: 'jwk',
  });
  return { name: m[1], keyId: m[2], key };
}

// A tlog-checkpoint in a signed note: body (origin, size, root) and signature lines.
function parseCheckpoint(note) {
  const split = note.indexOf('\n\n');
  assert.ok(split > 0, `signed note with a blank line: ${JSON.stringify(note)}`);
  const body = note.slice(0, split + 1);
  const [origin, sizeText, rootText] = body.split('\n');
  assert.match(sizeText, /^[1-9][0-9]*$/);
  const root = Buffer.from(rootText, 'base64');
  assert.equal(root.length, 32);
  const signatures = note
    .slice(split + 2)
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => {
      const m = /^\u2014 (\S+) ([A-Za-z0-9+/=]+)$/.exec(line);
      assert.ok(m, `signature line: ${JSON.stringify(line)}`);
      const sig = Buffer.from(m[2], 'base64');
      return { name: m[1], keyId: sig.subarray(0, 4).toString('hex'), signature: sig.subarray(4) };
    });
  return { body, origin, size: Number(sizeText), root, signatures };
}

// Checks that some key of `vkeys` signed `note`; returns the parsed checkpoint.
function verifyCheckpoint(note, vkeys) {
  const cp = parseCheckpoint(note);
  const keys = vkeys.map(parseVkey);
  const good = cp.signatures.filter((s) =>
    keys.some(
      (k) =>
        k.name === s.name &&
        k.keyId === s.keyId &&
        s.signature.length === 64 &&
        crypto.verify(null, Buffer.from(cp.body), k.key, s.signature),
    ),
  );
  assert.ok(good.length > 0, `no valid signature by ${vkeys.join(', ')} on\n${note}`);
  return cp;
}

// Signs `body` as a C2SP note with a fresh Ed25519 key named `name`; returns { note, vkey }.
function signWithNewKey(body, name) {
  const { publicKey, privateKey } = crypto.generateKeyPairSync('ed25519');
  const raw = Buffer.from(publicKey.export({ format: 'jwk' }).x, 'base64url');
  const keyId = keyIdOf(name, raw);
  const sig = crypto.sign(null, Buffer.from(body), privateKey);
  return {
    note: `${body}\n\u2014 ${name} ${b64(Buffer.concat([keyId, sig]))}\n`,
    vkey: `${name}+${keyId.toString('hex')}+${b64(Buffer.concat([Buffer.from([1]), raw]))}`,
  };
}

// tlog-tiles entry bundle: big-endian uint16 length, then the entry.
function decodeBundle(buf) {
  const entries = [];
  for (let at = 0; at < buf.length; ) {
    assert.ok(at + 2 <= buf.length, 'truncated entry bundle');
    const n = buf.readUInt16BE(at);
    entries.push({ offset: at + 2, bytes: buf.subarray(at + 2, at + 2 + n) });
    at += 2 + n;
  }
  return entries;
}

// --- HTTP and CLI ------------------------------------------------------------------------------

async function fetchBytes(url, token) {
  const res = await fetch(url, token ? { headers: { Authorization: `SSWS ${token}` } } : {});
  const body = Buffer.from(await res.arrayBuffer());
  assert.equal(res.status, 200, `GET ${url}: ${res.status} ${body.toString()}`);
  return { body, type: res.headers.get('content-type') };
}

async function fetchText(url, token) {
  return (await fetchBytes(url, token)).body.toString('utf8');
}

async function logKeys(srv) {
  const text = await fetchText(`${srv.baseUrl}/.well-known/custos/log-keys`);
  return text.split('\n').filter((l) => l !== '');
}

// Every event of the tenant, oldest first (fewer than 1000 in these tests).
async function allEvents(orgUrl, token) {
  const res = await request(`${orgUrl}/api/v1/logs?limit=1000&since=2000-01-01T00:00:00Z`, { token });
  assert.equal(res.status, 200, res.text);
  assert.ok(res.json.length < 1000);
  return res.json;
}

// Waits until every event of the tenant so far is sequenced and a checkpoint covers it; returns
// { events, note }.
async function waitForCheckpoint(orgUrl, token) {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const events = await allEvents(orgUrl, token);
    if (events.every((e) => Number.isInteger(e.custos?.log?.index))) {
      const need = Math.max(...events.map((e) => e.custos.log.index)) + 1;
      const res = await request(`${orgUrl}/log/checkpoint`, { token });
      if (res.status === 200 && parseCheckpoint(res.text).size >= need) {
        return { events, note: res.text };
      }
    }
    assert.ok(Date.now() < deadline, 'no checkpoint covered the events within 15 s');
    await sleep(50);
  }
}

let serial = 0;
async function createUser(srv) {
  serial += 1;
  const login = `log.${serial}.${Date.now()}@example.com`;
  const res = await request(`${srv.orgUrl}/api/v1/users?activate=true`, {
    method: 'POST',
    token: srv.token,
    body: {
      profile: { firstName: 'Log', lastName: `Reader${serial}`, email: login, login },
      credentials: { password: { value: PASSWORD } },
    },
  });
  assert.equal(res.status, 200, res.text);
  return login;
}

async function signIn(srv, username, password) {
  return request(`${srv.orgUrl}/api/v1/authn`, { method: 'POST', body: { username, password } });
}

// Users, two failed sign-ins and a good one.
async function makeActivity(srv) {
  const alice = await createUser(srv);
  await createUser(srv);
  for (let i = 0; i < 2; i += 1) {
    const bad = await signIn(srv, alice, WRONG_PASSWORD);
    assert.equal(bad.status, 401, bad.text);
  }
  const good = await signIn(srv, alice, PASSWORD);
  assert.equal(good.status, 200, good.text);
  assert.equal(good.json.status, 'SUCCESS');
  return alice;
}

const isFailedSignIn = (e) => e.eventType === 'user.session.start' && e.outcome.result === 'FAILURE';

// The CLI sees none of the CUSTOS_* variables of the calling shell, and keeps its state files in
// the scratch directory.
function cliEnv() {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('CUSTOS_')));
  return { ...env, XDG_STATE_HOME: path.join(scratch, 'xdg-state') };
}

// Runs `custos ARGS...`; returns { code, stdout, stderr } whatever the exit code.
function runCustos(args) {
  return new Promise((resolve) => {
    execFile(custosBin, withStore(args), { timeout: 60_000, env: cliEnv(), cwd: scratch }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : `${err.code ?? err.signal}`) : 0;
      resolve({ code, stdout, stderr, text: `exit ${code}\nstdout: ${stdout}\nstderr: ${stderr}` });
    });
  });
}

// `custos log verify SOURCE ARGS...`.
const verifyLog = (source, ...args) => runCustos(['log', 'verify', source, ...args]);

// --- A customer's own check --------------------------------------------------------------

test('checkpoints, inclusion and consistency proofs and tiles verify with node:crypto alone', async () => {
  const { token, orgUrl } = server;
  const logUrl = `${orgUrl}/log`;
  const vkeys = await logKeys(server);
  assert.equal(vkeys.length, 1, vkeys.join('\n'));
  assert.equal(parseVkey(vkeys[0]).name, new URL(server.baseUrl).host);
  assert.deepEqual((await fetchText(`${logUrl}/keys`, token)).split('\n').filter(Boolean), vkeys);

  // An older checkpoint, before the activity.
  const olderNote = (await waitForCheckpoint(orgUrl, token)).note;
  const older = { ...verifyCheckpoint(olderNote, vkeys), note: olderNote };
  await makeActivity(server);
  const { events, note } = await waitForCheckpoint(orgUrl, token);
  const checkpoint = verifyCheckpoint(note, vkeys);
  const served = await fetchBytes(`${logUrl}/checkpoint`, token);
  assert.equal(served.type, 'text/plain; charset=utf-8');
  // The signature covers the body: another size or root does not verify.
  const [origin, size, root, ...signature] = note.split('\n');
  const withBody = (...body) => [...body, ...signature].join('\n');
  assert.throws(() => verifyCheckpoint(withBody(origin, String(checkpoint.size + 1), root), vkeys));
  assert.throws(() => verifyCheckpoint(withBody(origin, size, b64(leafHash('x'))), vkeys));
  assert.equal(checkpoint.origin, `${new URL(server.baseUrl).host}/t/acme`);
  assert.ok(checkpoint.size >= older.size + 5, `${older.size} -> ${checkpoint.size}`);
  assert.ok(checkpoint.size < 256, 'one partial tile holds the whole log');
  for (const e of events) assert.equal(e.custos.log.origin, checkpoint.origin);
  assert.deepEqual(
    events.map((e) => e.custos.log.index),
    events.map((_, i) => i),
    'events are in log order, each once',
  );

  // A failed sign-in, as a SIEM would hold it: its canonical JSON is the log's entry.
  const failed = events.find(isFailedSignIn);
  assert.ok(failed, `a failed sign-in among ${events.map((e) => e.eventType).join(', ')}`);
  const index = failed.custos.log.index;
  const { custos, ...bare } = failed;
  const entry = jcs(bare);
  const inclusion = await request(`${logUrl}/proof/inclusion?index=${index}&size=${checkpoint.size}`, {
    token,
  });
  assert.equal(inclusion.status, 200, inclusion.text);
  assert.equal(inclusion.json.origin, checkpoint.origin);
  assert.equal(inclusion.json.index, index);
  assert.equal(inclusion.json.treeSize, checkpoint.size);
  assert.equal(inclusion.json.checkpoint, note);
  assert.equal(inclusion.json.leafHash, b64(leafHash(entry)), 'the canonical event is the entry');
  const proven = rootFromInclusionProof(
    index,
    checkpoint.size,
    leafHash(entry),
    inclusion.json.hashes.map((h) => Buffer.from(h, 'base64')),
  );
  assert.equal(b64(proven), b64(checkpoint.root), 'the inclusion proof leads to the signed root');

  // The same by uuid.
  const byUuid = await request(`${logUrl}/proof/inclusion?uuid=${failed.uuid}&size=${checkpoint.size}`, {
    token,
  });
  assert.equal(byUuid.status, 200, byUuid.text);
  assert.deepEqual(byUuid.json, inclusion.json);

  // Every entry of the log, from the tiles.
  const W = checkpoint.size;
  const tile = await fetchBytes(`${logUrl}/tile/0/000.p/${W}`, token);
  assert.equal(tile.type, 'application/octet-stream');
  assert.equal(tile.body.length, W * 32);
  const bundle = await fetchBytes(`${logUrl}/tile/entries/000.p/${W}`, token);
  assert.equal(bundle.type, 'application/octet-stream');
  const entries = decodeBundle(bundle.body);
  assert.equal(entries.length, W);
  const leaves = [];
  entries.forEach(({ bytes }, i) => {
    const h = leafHash(bytes);
    assert.equal(b64(h), b64(tile.body.subarray(32 * i, 32 * i + 32)), `leaf hash at index ${i}`);
    leaves.push(h);
  });
  assert.equal(entries[index].bytes.toString('utf8'), entry);
  assert.equal(b64(rootOf(leaves)), b64(checkpoint.root), 'all entries give the signed root');
  assert.equal(b64(rootOf(leaves.slice(0, older.size))), b64(older.root), 'and the older root');
  assert.equal((await request(`${logUrl}/tile/0/000.p/${W + 1}`, { token })).status, 404);

  // Every entry is in the signed tree, and every earlier tree is a prefix of it.
  for (let i = 0; i < W; i += 1) {
    const res = await request(`${logUrl}/proof/inclusion?index=${i}&size=${W}`, { token });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.leafHash, b64(leaves[i]));
    const hashes = res.json.hashes.map((h) => Buffer.from(h, 'base64'));
    assert.equal(b64(rootFromInclusionProof(i, W, leaves[i], hashes)), b64(checkpoint.root), `index ${i}`);
    const other = leaves[(i + 1) % W];
    assert.notEqual(b64(rootFromInclusionProof(i, W, other, hashes)), b64(checkpoint.root));
  }
  for (let m = 1; m < W; m += 1) {
    const res = await request(`${logUrl}/proof/consistency?from=${m}`, { token });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.to, W);
    const hashes = res.json.hashes.map((h) => Buffer.from(h, 'base64'));
    verifyConsistency(m, W, rootOf(leaves.slice(0, m)), checkpoint.root, hashes);
  }
  const atOlder = await request(`${logUrl}/proof/inclusion?index=0&size=${older.size}`, { token });
  assert.equal(atOlder.status, 200, atOlder.text);
  assert.equal(atOlder.json.checkpoint, older.note);

  // The new tree extends the old one, with the proof between the two signed checkpoints.
  const consistency = await request(
    `${logUrl}/proof/consistency?from=${older.size}&to=${checkpoint.size}`,
    { token },
  );
  assert.equal(consistency.status, 200, consistency.text);
  assert.deepEqual(
    [consistency.json.origin, consistency.json.from, consistency.json.to],
    [checkpoint.origin, older.size, checkpoint.size],
  );
  verifyConsistency(
    older.size,
    checkpoint.size,
    older.root,
    checkpoint.root,
    consistency.json.hashes.map((h) => Buffer.from(h, 'base64')),
  );
  // A forged newer root is not consistent with the old one.
  assert.throws(() =>
    verifyConsistency(
      older.size,
      checkpoint.size,
      older.root,
      leafHash('forged'),
      consistency.json.hashes.map((h) => Buffer.from(h, 'base64')),
    ),
  );
});

// --- tlog-proof --------------------------------------------------------------------------

test('a served tlog-proof passes `custos log verify-proof`, and fails once its entry changed', async () => {
  const { token, orgUrl } = server;
  const { events, note } = await waitForCheckpoint(orgUrl, token);
  const [vkey] = await logKeys(server);
  const event = events.find(isFailedSignIn);
  const index = event.custos.log.index;

  const proof = await fetchText(`${orgUrl}/log/proof/tlog-proof?index=${index}`, token);
  const lines = proof.split('\n');
  assert.equal(lines[0], 'c2sp.org/tlog-proof@v1');
  assert.match(lines[1], /^extra [A-Za-z0-9+/=]+$/);
  const { custos, ...bare } = event;
  assert.equal(Buffer.from(lines[1].slice('extra '.length), 'base64').toString('utf8'), jcs(bare));
  assert.equal(lines[2], `index ${index}`);
  const hashesEnd = proof.indexOf('\n\n');
  for (const h of lines.slice(3, proof.slice(0, hashesEnd).split('\n').length)) {
    assert.equal(Buffer.from(h, 'base64').length, 32, `proof hash line ${h}`);
  }
  assert.equal(proof.slice(hashesEnd + 2), note, 'the proof carries the latest checkpoint');
  verifyCheckpoint(proof.slice(hashesEnd + 2), [vkey]);

  const file = path.join(scratch, 'event.tlog-proof');
  await writeFile(file, proof);
  const ok = await runCustos(['log', 'verify-proof', file, '--vkey', vkey]);
  assert.equal(ok.code, 0, ok.text);

  // Another key does not vouch for it.
  const other = signWithNewKey('x\n1\n', parseVkey(vkey).name).vkey;
  const untrusted = await runCustos(['log', 'verify-proof', file, '--vkey', other]);
  assert.equal(untrusted.code, 1, untrusted.text);

  // One character of the entry changed (to another base64 letter, mid-line).
  const extra = lines[1];
  const at = Math.floor(extra.length / 2);
  const flipped = extra[at] === 'A' ? 'B' : 'A';
  const forged = [lines[0], extra.slice(0, at) + flipped + extra.slice(at + 1), ...lines.slice(2)].join('\n');
  assert.notEqual(forged, proof);
  await writeFile(file, forged);
  const bad = await runCustos(['log', 'verify-proof', file, '--vkey', vkey]);
  assert.equal(bad.code, 1, bad.text);
  assert.match(bad.stderr, new RegExp(`index ${index}\\b`), bad.text);
});

// --- Who may read --------------------------------------------------------------------------

test('the log needs a token with admin or log.read scope, unless the tenant makes it public', async () => {
  const { token, orgUrl } = server;
  const eventOf = async (requestId) => {
    const events = await allEvents(orgUrl, token);
    return events.find((e) => e.debugContext?.debugData?.requestId === requestId);
  };

  // No token: 401, and the refusal is in the System Log before the answer comes back.
  const anonymous = await request(`${orgUrl}/log/checkpoint`, { token: null });
  assert.equal(anonymous.status, 401, anonymous.text);
  assert.equal(anonymous.json.errorCode, 'E0000011');
  const refused = await eventOf(anonymous.headers.get('x-request-id'));
  assert.ok(refused, 'an event for the refused request');
  assert.equal(refused.eventType, 'system.api_token.verify');
  assert.equal(refused.outcome.result, 'FAILURE');
  for (const p of ['tile/0/000.p/1', 'tile/entries/000.p/1', 'keys', 'proof/inclusion?index=0']) {
    const res = await request(`${orgUrl}/log/${p}`, { token: null });
    assert.equal(res.status, 401, `${p}: ${res.text}`);
  }

  // An auditor's token reads the log and the System Log API, and nothing else.
  const auditor = await runAdmin([
    'create-api-token', '--tenant', 'acme', '--data-dir', server.dataDir, '--scope', 'log.read',
    '--name', 'auditor',
  ]);
  assert.match(auditor, /^\S+$/);
  const { note } = await waitForCheckpoint(orgUrl, token);
  const size = parseCheckpoint(note).size;
  for (const p of ['checkpoint', `tile/0/000.p/${size}`, `tile/entries/000.p/${size}`, 'keys',
    'proof/inclusion?index=0', `proof/consistency?from=1&to=${size}`, 'proof/tlog-proof?index=0']) {
    const res = await request(`${orgUrl}/log/${p}`, { token: auditor });
    assert.equal(res.status, 200, `${p} with a log.read token: ${res.text}`);
  }
  const logs = await request(`${orgUrl}/api/v1/logs?limit=5`, { token: auditor });
  assert.equal(logs.status, 200, logs.text);
  assert.equal(logs.json.length, 5);
  const users = await request(`${orgUrl}/api/v1/users`, { token: auditor });
  assert.equal(users.status, 403, users.text);
  assert.equal(users.json.errorCode, 'E0000006');
  const denied = await eventOf(users.headers.get('x-request-id'));
  assert.ok(denied, 'an event for the denied request');
  assert.equal(denied.eventType, 'system.api_token.verify');
  assert.equal(denied.outcome.result, 'DENY');
  const selfPublish = await request(`${orgUrl}/api/v1/log/settings`, {
    method: 'PUT', token: auditor, body: { public: true },
  });
  assert.equal(selfPublish.status, 403, selfPublish.text);
  assert.equal((await request(`${orgUrl}/log/checkpoint`, { token: null })).status, 401);

  // The admin makes the log public: readable without a token, and the change is an event.
  const published = await request(`${orgUrl}/api/v1/log/settings`, {
    method: 'PUT', token, body: { public: true },
  });
  assert.equal(published.status, 200, published.text);
  assert.equal(published.json.public, true);
  const change = await eventOf(published.headers.get('x-request-id'));
  assert.equal(change?.eventType, 'log.settings.update');
  assert.equal(change.outcome.result, 'SUCCESS');
  const open = await request(`${orgUrl}/log/checkpoint`, { token: null });
  assert.equal(open.status, 200, open.text);
  verifyCheckpoint(open.text, await logKeys(server));
  assert.equal((await request(`${orgUrl}/log/tile/0/000.p/1`, { token: null })).status, 200);
  // The System Log API itself stays private.
  assert.equal((await request(`${orgUrl}/api/v1/logs`, { token: null })).status, 401);

  const closed = await request(`${orgUrl}/api/v1/log/settings`, {
    method: 'PUT', token, body: { public: false },
  });
  assert.equal(closed.status, 200, closed.text);
  assert.equal((await request(`${orgUrl}/log/checkpoint`, { token: null })).status, 401);

  // The provider log: a provider token, not a tenant's.
  const providerLog = `${server.baseUrl}/provider/log`;
  assert.equal((await request(`${providerLog}/checkpoint`, { token: null })).status, 401);
  const withTenantToken = await request(`${providerLog}/checkpoint`, { token });
  assert.equal(withTenantToken.status, 401, withTenantToken.text);
  const providerToken = await runAdmin(['create-provider-token', '--data-dir', server.dataDir]);
  assert.match(providerToken, /^\S+$/);
  const providerNote = await fetchText(`${providerLog}/checkpoint`, providerToken);
  const pcp = verifyCheckpoint(providerNote, await logKeys(server));
  assert.equal(pcp.origin, `${new URL(server.baseUrl).host}/provider`);
  const pentries = decodeBundle(
    (await fetchBytes(`${providerLog}/tile/entries/000.p/${pcp.size}`, providerToken)).body,
  );
  const pleaves = pentries.map(({ bytes }) => leafHash(bytes));
  assert.equal(b64(rootOf(pleaves)), b64(pcp.root));
  const providerEvents = pentries.map(({ bytes }) => JSON.parse(bytes));
  const keyCreated = providerEvents.find((e) => e.eventType === 'log.key.create');
  assert.ok(keyCreated, 'log.key.create in the provider log');
  // A provider token is not a tenant token.
  assert.equal((await request(`${orgUrl}/log/checkpoint`, { token: providerToken })).status, 401);
});

// --- A log longer than one tile -----------------------------------------------------------------

test('bad log requests get 400 naming the problem, and change nothing', async () => {
  const { orgUrl, token } = server;
  await waitForCheckpoint(orgUrl, token);
  const bad = [
    ['proof/inclusion?index=abc', /index must be a non-negative decimal integer/],
    ['proof/inclusion?index=99999999999999999999', /index must be a non-negative decimal integer/],
    ['proof/inclusion?index=007', /index must be a non-negative decimal integer/],
    ['proof/inclusion?index=0&uuid=x', /either index or uuid/],
    ['proof/inclusion', /either index or uuid/],
    ['proof/inclusion?index=0&size=0', /size must be between 1 and/],
    ['proof/consistency', /from is required/],
    ['proof/consistency?from=0', /from must be between 1 and/],
    ['proof/consistency?from=1&to=999999999', /to must be at most/],
    ['tile/0/1', /tile/],
    ['tile/0/000.p/300', /width|tile/],
    ['tile/64/000', /level|tile/],
  ];
  for (const [p, message] of bad) {
    const res = await request(`${orgUrl}/log/${p}`, { token });
    assert.equal(res.status, 400, `${p}: ${res.text}`);
    assert.equal(res.json.errorCode, 'E0000001', p);
    assert.match(`${res.json.errorSummary} ${JSON.stringify(res.json.errorCauses)}`, message, p);
  }
  assert.equal((await request(`${orgUrl}/log/nothing-here`, { token })).status, 404);

  // Settings: bad bodies are refused, and the log stays private with no settings event.
  const before = (await allEvents(orgUrl, token)).length;
  for (const [body, code] of [[{ public: 'yes' }, 'E0000001'], [{}, 'E0000001'],
    [[true], 'E0000001']]) {
    const res = await request(`${orgUrl}/api/v1/log/settings`, { method: 'PUT', token, body });
    assert.equal(res.status, 400, res.text);
    assert.equal(res.json.errorCode, code);
  }
  const notJson = await request(`${orgUrl}/api/v1/log/settings`,
    { method: 'PUT', token, raw: '{"public": tru' });
  assert.equal(notJson.status, 400, notJson.text);
  assert.equal(notJson.json.errorCode, 'E0000003');
  const settings = await request(`${orgUrl}/api/v1/log/settings`, { token });
  assert.equal(settings.json.public, false);
  const after = await allEvents(orgUrl, token);
  assert.ok(!after.slice(before).some((e) => e.eventType === 'log.settings.update'),
    'no settings event for a refused change');
});

test('refused tokens beyond the per-address limit get 429 and add nothing to the log', async () => {
  // Each refusal is a permanent log entry; the limit keeps one address from flooding the log.
  const limited = await startServer({
    tenants: ['acme'],
    settings: { ...FAST_LOG, 'server.refused_auth_per_minute_per_ip': 1,
      'server.refused_auth_burst_per_ip': 3 },
  });
  try {
    const { orgUrl, token } = limited;
    const before = (await allEvents(orgUrl, token)).length;
    const statuses = [];
    for (let i = 0; i < 6; i++) {
      statuses.push((await request(`${orgUrl}/log/checkpoint`, { token: 'cst_forged' })).status);
    }
    assert.deepEqual(statuses, [401, 401, 401, 429, 429, 429]);
    const limitedAnswer = await request(`${orgUrl}/api/v1/users`, { token: 'cst_forged' });
    assert.equal(limitedAnswer.status, 429, limitedAnswer.text);
    assert.equal(limitedAnswer.json.errorCode, 'E0000047');
    const refusals = (await allEvents(orgUrl, token)).slice(before)
      .filter((e) => e.eventType === 'system.api_token.verify');
    assert.equal(refusals.length, 3, 'one event per answered refusal, none for the 429s');
    // A valid token is never limited.
    await waitForCheckpoint(orgUrl, token);
  } finally {
    await limited.stop();
  }
});

test('past 256 entries: full and partial tiles, the level-1 tile, and an incremental verify', async () => {
  const { token, orgUrl } = server;
  const logUrl = `${orgUrl}/log`;
  const [vkey] = await logKeys(server);
  const older = parseCheckpoint((await waitForCheckpoint(orgUrl, token)).note);
  assert.ok(older.size < 256);
  const state = path.join(scratch, 'long-state.json');
  const first = await verifyLog(logUrl, '--token', token, '--state', state, '--vkey', vkey);
  assert.equal(first.code, 0, first.text);
  assert.doesNotMatch(first.stderr, /trusted on first use/, first.text);

  // Each refused request is one event.
  const missing = 300 - older.size;
  for (let done = 0; done < missing; done += 25) {
    const batch = Array.from({ length: Math.min(25, missing - done) }, () =>
      request(`${logUrl}/checkpoint`, { token: 'forged' }),
    );
    for (const res of await Promise.all(batch)) assert.equal(res.status, 401);
  }
  const { note } = await waitForCheckpoint(orgUrl, token);
  const checkpoint = verifyCheckpoint(note, [vkey]);
  assert.ok(checkpoint.size >= 300 && checkpoint.size < 512, `size ${checkpoint.size}`);
  const rest = checkpoint.size - 256;

  const fullTile = (await fetchBytes(`${logUrl}/tile/0/000`, token)).body;
  const partialTile = (await fetchBytes(`${logUrl}/tile/0/001.p/${rest}`, token)).body;
  assert.equal(fullTile.length, 256 * 32);
  assert.equal(partialTile.length, rest * 32);
  const tileHashes = Buffer.concat([fullTile, partialTile]);
  const entries = [
    ...decodeBundle((await fetchBytes(`${logUrl}/tile/entries/000`, token)).body),
    ...decodeBundle((await fetchBytes(`${logUrl}/tile/entries/001.p/${rest}`, token)).body),
  ];
  assert.equal(entries.length, checkpoint.size);
  const leaves = entries.map(({ bytes }, i) => {
    const h = leafHash(bytes);
    assert.equal(b64(h), b64(tileHashes.subarray(32 * i, 32 * i + 32)), `leaf hash at index ${i}`);
    return h;
  });
  assert.equal(b64(rootOf(leaves)), b64(checkpoint.root));
  // The level-1 tile holds the roots of the full level-0 tiles.
  const level1 = (await fetchBytes(`${logUrl}/tile/1/000.p/1`, token)).body;
  assert.equal(b64(level1), b64(rootOf(leaves.slice(0, 256))));
  assert.equal((await request(`${logUrl}/tile/0/001`, { token })).status, 404, 'no full tile 001 yet');

  for (const index of [0, 255, 256, checkpoint.size - 1]) {
    const res = await request(`${logUrl}/proof/inclusion?index=${index}&size=${checkpoint.size}`, { token });
    assert.equal(res.status, 200, res.text);
    const hashes = res.json.hashes.map((h) => Buffer.from(h, 'base64'));
    const proven = rootFromInclusionProof(index, checkpoint.size, leaves[index], hashes);
    assert.equal(b64(proven), b64(checkpoint.root), `index ${index}`);
  }
  const consistency = await request(`${logUrl}/proof/consistency?from=${older.size}&to=${checkpoint.size}`, {
    token,
  });
  assert.equal(consistency.status, 200, consistency.text);
  verifyConsistency(
    older.size,
    checkpoint.size,
    older.root,
    checkpoint.root,
    consistency.json.hashes.map((h) => Buffer.from(h, 'base64')),
  );

  // The auditor's next run checks only what was added, from the kept state.
  const next = await verifyLog(logUrl, '--token', token, '--state', state, '--incremental');
  assert.equal(next.code, 0, next.text);
  const saved = JSON.parse(await readFile(state, 'utf8'));
  assert.equal(saved.size, checkpoint.size);
  assert.equal(saved.rootHash, b64(checkpoint.root));
  assert.equal(saved.checkpoint, note);
});

// --- Tampering with the store ----------------------------------------------------------------

const sqlQuote = (s) => `'${s.replaceAll("'", "''")}'`;

// An event altered, deleted, reordered or inserted in the store; a re-signed checkpoint; an older
// copy of the store served in its place (rollback), then grown differently (fork).
test('`custos log verify` catches every edit of the store and names the broken index', async () => {
  const data = await createDataDir({ tenants: ['acme'] });
  const copies = [];
  try {
    // A copy of the store as it was after the first activity, for the fork below.
    tampered = await serveDataDir(data, { settings: FAST_LOG });
    const { token } = tampered;
    await makeActivity(tampered);
    await waitForCheckpoint(tampered.orgUrl, token);
    assert.equal((await tampered.stop()).code, 0);
    const early = await copyDataDir(data, path.join(scratch, 'store-early'));
    copies.push(early);

    tampered = await serveDataDir(data, { settings: FAST_LOG });
    await makeActivity(tampered);
    const { events, note } = await waitForCheckpoint(tampered.orgUrl, token);
    const checkpoint = parseCheckpoint(note);
    const [vkey] = await logKeys(tampered);
    const failedSignIns = events.filter(isFailedSignIn).map((e) => e.custos.log.index);
    assert.equal(failedSignIns.length, 4);
    const [k, k2] = failedSignIns;

    // A customer verified the log (trusting its keys on first use) and kept the state.
    const state = path.join(scratch, 'acme-state.json');
    const first = await verifyLog(`${tampered.orgUrl}/log`, '--origin', checkpoint.origin, '--token', token, '--state', state);
    assert.equal(first.code, 0, first.text);
    assert.match(first.stderr, /trusted on first use/, first.text);
    assert.doesNotMatch(first.stdout + first.stderr, new RegExp(token), 'the token is never printed');
    const saved = JSON.parse(await readFile(state, 'utf8'));
    assert.equal(saved.size, checkpoint.size);
    assert.equal(saved.rootHash, b64(checkpoint.root));
    assert.deepEqual(saved.verifierKeys, [vkey]);

    // And exported it; the export verifies offline.
    const exported = path.join(scratch, 'acme-export');
    const exp = await runCustos([
      'log', 'export', `${tampered.orgUrl}/log`, '--token', token, '--out', exported,
    ]);
    assert.equal(exp.code, 0, exp.text);
    const offline = await verifyLog(exported, '--vkey', vkey, '--state', path.join(scratch, 'x1.json'));
    assert.equal(offline.code, 0, offline.text);
    const expCheckpoint = parseCheckpoint(await readFile(path.join(exported, 'checkpoint'), 'utf8'));

    const stopped = await tampered.stop();
    assert.equal(stopped.code, 0, JSON.stringify(stopped));
    tampered = undefined;

    const L = sqlQuote(data.tenants[0].id);
    const seqAt = (i) => `(SELECT seq FROM log_entries WHERE log_id = ${L} AND log_index = ${i})`;
    const forgedEvent = { ...events[k2 - 1], uuid: crypto.randomUUID(), displayMessage: 'Forged' };
    delete forgedEvent.custos;
    const forgedJson = jcs(forgedEvent);
    const re = signWithNewKey(checkpoint.body, checkpoint.signatures[0].name);
    const forgedKeyHint = `${checkpoint.signatures[0].name}+${parseVkey(re.vkey).keyId}`;

    const scenarios = [
      {
        what: 'an event altered (a failed sign-in turned into a success)',
        sql:
          `UPDATE events SET json = replace(json, '"result":"FAILURE"', '"result":"SUCCESS"') ` +
          `WHERE seq = ${seqAt(k)};`,
        expect: new RegExp(`index ${k}: the entry does not match the log's leaf hash`),
      },
      {
        what: 'an event deleted',
        sql: `DELETE FROM events WHERE seq = ${seqAt(k)};`,
        expect: new RegExp(`index ${k}\\b`),
      },
      {
        what: 'two events reordered',
        sql:
          `CREATE TEMP TABLE pair AS SELECT seq, json FROM events WHERE seq IN (${seqAt(k)}, ${seqAt(k2)});` +
          `UPDATE events SET json = (SELECT json FROM pair WHERE pair.seq <> events.seq) ` +
          `WHERE seq IN (SELECT seq FROM pair);`,
        expect: new RegExp(`index ${k}: the entry does not match the log's leaf hash`),
      },
      {
        what: 'an event inserted',
        sql:
          `INSERT INTO events (tenant_id, uuid, published, event_type, json) VALUES (${L}, ` +
          `${sqlQuote(forgedEvent.uuid)}, (SELECT published FROM events WHERE seq = ${seqAt(k2 - 1)}), ` +
          `${sqlQuote(forgedEvent.eventType)}, ${sqlQuote(forgedJson)});` +
          // Indices k2.. move up by one (through negative values: the key is checked per row).
          `UPDATE log_entries SET log_index = -1 - log_index WHERE log_id = ${L} AND log_index >= ${k2};` +
          `UPDATE log_entries SET log_index = -log_index WHERE log_id = ${L} AND log_index < 0;` +
          `INSERT INTO log_entries (log_id, log_index, seq) VALUES (${L}, ${k2}, ${sqlDialect.lastEventSeq});` +
          // Not left for the sequencer to pick up as a new event.
          `UPDATE log_outbox SET sequenced_seq = (SELECT max(seq) FROM events);`,
        expect: new RegExp(`index ${k2}: the entry does not match the log's leaf hash`),
      },
      {
        what: 'the latest checkpoint re-signed by another key',
        sql:
          `UPDATE log_checkpoints SET note = ${sqlQuote(re.note)} WHERE log_id = ${L} ` +
          `AND size = ${checkpoint.size};`,
        expect: new RegExp(
          `not signed by a trusted key: it is signed by ${forgedKeyHint.replaceAll('+', '\\+')};`,
        ),
      },
    ];

    for (const [n, s] of scenarios.entries()) {
      const copy = await copyDataDir(data, path.join(scratch, `store-${n}`));
      copies.push(copy);
      await sqlExec(copy, s.sql);
      tampered = await serveDataDir(copy, { settings: FAST_LOG });
      const stateCopy = path.join(scratch, `state-${n}.json`);
      await cp(state, stateCopy);
      const res = await verifyLog(`${tampered.orgUrl}/log`, '--origin', checkpoint.origin, '--token', token, '--state', stateCopy);
      assert.equal(res.code, 1, `${s.what}: ${res.text}`);
      assert.match(res.stderr, s.expect, `${s.what}: ${res.text}`);
      assert.equal(await readFile(stateCopy, 'utf8'), await readFile(state, 'utf8'), 'state untouched');
      const status = await tampered.stop();
      assert.equal(status.code, 0, `${s.what}: exit status ${JSON.stringify(status)}`);
      tampered = undefined;
    }

    // The older copy served in place of the store: first a smaller log (rollback), then, grown
    // with other events past the verified size, a different history (fork).
    tampered = await serveDataDir(early, { settings: FAST_LOG });
    const earlyNote = (await waitForCheckpoint(tampered.orgUrl, token)).note;
    const earlySize = parseCheckpoint(earlyNote).size;
    assert.ok(earlySize < checkpoint.size);
    const rolledBack = await verifyLog(`${tampered.orgUrl}/log`, '--origin', checkpoint.origin, '--token', token, '--state', state);
    assert.equal(rolledBack.code, 1, rolledBack.text);
    assert.match(
      rolledBack.stderr,
      new RegExp(
        `rollback: the log's checkpoint has size ${earlySize}, smaller than size ${checkpoint.size}`,
      ),
      rolledBack.text,
    );
    for (;;) {
      const grown = await waitForCheckpoint(tampered.orgUrl, token);
      if (parseCheckpoint(grown.note).size > checkpoint.size) break;
      // Each refused request is one more event.
      assert.equal((await request(`${tampered.orgUrl}/log/checkpoint`, { token: 'forged' })).status, 401);
    }
    for (const mode of [[], ['--incremental']]) {
      const forked = await verifyLog(`${tampered.orgUrl}/log`, '--origin', checkpoint.origin, '--token', token, '--state', state, ...mode);
      assert.equal(forked.code, 1, forked.text);
      assert.match(
        forked.stderr,
        new RegExp(
          `history rewritten: the tree of size ${checkpoint.size} no longer has the root you verified`,
        ),
        forked.text,
      );
    }
    assert.equal(JSON.parse(await readFile(state, 'utf8')).rootHash, b64(checkpoint.root));
    assert.equal((await tampered.stop()).code, 0);
    tampered = undefined;

    // A byte of an exported entry bundle changed: the offline check names its index.
    assert.equal(expCheckpoint.size, checkpoint.size);
    const bundlePath = path.join(exported, 'tile', 'entries', '000.p', String(expCheckpoint.size));
    const bundle = await readFile(bundlePath);
    const target = decodeBundle(bundle)[k2];
    const at = target.offset + target.bytes.indexOf('"displayMessage":"') + '"displayMessage":"'.length;
    bundle[at] ^= 0x20; // the first letter of the message, case flipped
    await writeFile(bundlePath, bundle);
    const broken = await verifyLog(exported, '--vkey', vkey, '--state', path.join(scratch, 'x2.json'));
    assert.equal(broken.code, 1, broken.text);
    assert.match(
      broken.stderr,
      new RegExp(`index ${k2}: the entry does not match the log's leaf hash`),
      broken.text,
    );
  } finally {
    if (tampered) await tampered.stop(); // its output stays for a failure report
    for (const copy of copies) await removeDataDir(copy);
    await removeDataDir(data);
  }
});
