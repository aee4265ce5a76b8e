// Starts a real `custos serve` for end-to-end tests, and reads its SQLite store.
//
//   const server = await startServer({ tenants: ['acme'], settings: { 'authn.lockout_threshold': 3 } });
//   server.orgUrl             // http://127.0.0.1:PORT/t/acme  (the first tenant)
//   server.token              // SSWS token of the first tenant
//   server.tenant('globex')   // { name, id, token, orgUrl } of any tenant
//   await server.stop();      // SIGTERM, waits for exit; returns { code, signal }
//
// Each server gets a fresh data directory; the tenants and their API tokens are made with the
// `custos admin` commands before it starts. The tests sign in many times from 127.0.0.1, so the
// per-address sign-in rate limit is off unless `signInRateLimit: true` asks for the server's
// own (default) limit. CUSTOS_BIN overrides the binary's path.
// KEEP_E2E_DATA=1 keeps the data directories for a look afterwards.

import { execFile, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { test } from 'node:test';

const execFileP = promisify(execFile);

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const custosBin = process.env.CUSTOS_BIN
  ? path.resolve(process.env.CUSTOS_BIN)
  : path.join(repoRoot, 'build/src/cli/custos');

// Small Argon2id parameters keep password hashing (and so the tests) fast.
export const FAST_HASHING = Object.freeze({
  'password.argon2_memory_kib': 1024,
  'password.argon2_iterations': 1,
});

// Every request of a test comes from 127.0.0.1; lockout and timing tests sign in more often
// than the per-address limit allows.
// The same for refused API tokens, which some tests send on purpose to make events.
export const NO_SIGNIN_RATE_LIMIT = Object.freeze({
  'server.authn_rate_per_ip': 0,
  'server.refused_auth_per_minute_per_ip': 0,
});

const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 30_000;
const LOG_TAIL_LINES = 80;

// The servers see none of the CUSTOS_* settings of the calling shell, and run in their data
// directory so that no stray ./custos.toml is read.
const childEnv = Object.fromEntries(
  Object.entries(process.env).filter(([key]) => !key.startsWith('CUSTOS_')),
);

const running = new Set();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

// Runs `custos admin ARGS...` and returns its stdout, trimmed. Throws with stderr on failure.
export async function runAdmin(args) {
  try {
    const { stdout } = await execFileP(custosBin, ['admin', ...args], {
      timeout: 30_000,
      env: childEnv,
      cwd: os.tmpdir(),
    });
    return stdout.trim();
  } catch (err) {
    throw new Error(
      `custos admin ${args.join(' ')} failed (exit ${err.code ?? err.signal}):\n` +
        `${err.stderr || ''}${err.stdout || ''}`,
    );
  }
}

class LineTail {
  constructor(limit) {
    this.limit = limit;
    this.lines = [];
    this.partial = '';
  }

  push(chunk) {
    const parts = (this.partial + chunk).split('\n');
    this.partial = parts.pop();
    for (const line of parts) {
      this.lines.push(line);
      if (this.lines.length > this.limit) this.lines.shift();
    }
  }

  text() {
    return [...this.lines, this.partial].filter((l) => l !== '').join('\n');
  }
}

export async function startServer({
  tenants = ['acme'],
  settings = {},
  extraArgs = [],
  signInRateLimit = false,
} = {}) {
  const data = await createDataDir({ tenants });
  for (const { token } of data.tenants) {
    if (!/^\S+$/.test(token)) {
      throw new Error(`create-api-token printed more than a token: ${JSON.stringify(token)}`);
    }
  }
  const server = await serveDataDir(data, { settings, extraArgs, signInRateLimit });
  let failed = false;
  const { reportFailure, stop } = server;
  // Unlike serveDataDir's, this server owns its directory: stop() removes it, unless a test
  // failed (reportFailure) or KEEP_E2E_DATA is set.
  server.reportFailure = (what) => {
    failed = true;
    reportFailure(what);
  };
  server.stop = async () => {
    const status = await stop();
    if (!failed && !process.env.KEEP_E2E_DATA) {
      await rm(data.dataDir, { recursive: true, force: true });
    } else {
      process.stderr.write(`(custos data kept in ${data.dataDir})\n`);
    }
    return status;
  };
  return server;
}

// A node:test `test` whose failure also prints the tail of the server's output.
// `getServer` is called at failure time (the server is usually started in `before`).
export function serverTest(getServer) {
  return (name, options, fn) => {
    if (typeof options === 'function') {
      fn = options;
      options = {};
    }
    return test(name, { timeout: 120_000, ...options }, async (t) => {
      try {
        await fn(t);
      } catch (err) {
        const servers = [getServer()].flat().filter(Boolean);
        for (const s of servers) s.reportFailure(`while "${name}" failed`);
        throw err;
      }
    });
  };
}

// One HTTP request with a JSON body (or `raw` text/stream), returning
// { status, headers, text, json }. `token` defaults to the server's; pass null to send none.
export async function request(url, { method = 'GET', token, body, raw, headers = {} } = {}) {
  const h = { Accept: 'application/json', ...headers };
  if (token) h.Authorization = `SSWS ${token}`;
  const init = { method, headers: h };
  if (body !== undefined) {
    h['Content-Type'] ??= 'application/json';
    init.body = JSON.stringify(body);
  } else if (raw !== undefined) {
    h['Content-Type'] ??= 'application/json';
    init.body = raw;
    if (typeof raw !== 'string' && !(raw instanceof Uint8Array)) init.duplex = 'half';
  }
  const res = await fetch(url, init);
  const text = await res.text();
  let json;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

// A bound `request` for one tenant of `server`: api('POST', '/api/v1/users', { body }).
export function tenantApi(server, tenantName) {
  const info = tenantName ? server.tenant(tenantName) : { orgUrl: server.orgUrl, token: server.token };
  return (method, pathAndQuery, opts = {}) =>
    request(info.orgUrl + pathAndQuery, { method, token: info.token, ...opts });
}

// Rows of `sql` from the server's SQLite file, read with the sqlite3 command-line tool
// (read-only; the server keeps running, the store is in WAL mode).
export async function sqlRows(server, sql) {
  const { stdout } = await execFileP(
    'sqlite3',
    ['-readonly', '-json', '-cmd', '.timeout 10000', server.dbPath, sql],
    { timeout: 30_000, maxBuffer: 64 * 1024 * 1024 },
  );
  return stdout.trim() ? JSON.parse(stdout) : [];
}

// Everything about users, groups, memberships and factors in the store (all tenants), plus the
// number of events: equal snapshots mean a request changed nothing.
export async function storeSnapshot(server) {
  const [users, groups, members, factors, sessions, transactions, tokens, events] = await Promise.all([
    sqlRows(server, 'SELECT * FROM users ORDER BY tenant_id, id'),
    sqlRows(server, 'SELECT * FROM groups ORDER BY tenant_id, id'),
    sqlRows(server, 'SELECT * FROM group_members ORDER BY tenant_id, group_id, user_id'),
    sqlRows(
      server,
      'SELECT tenant_id, id, user_id, factor_type, provider, status, hex(sealed_secret) AS secret, ' +
        'last_used_step, created, last_updated FROM factors ORDER BY tenant_id, id',
    ),
    // last_active and last_used move on ordinary use; everything else must not.
    sqlRows(server, 'SELECT tenant_id, id, user_id, token_hash, created, expires FROM sessions ' +
      'ORDER BY tenant_id, id'),
    sqlRows(server, 'SELECT * FROM authn_transactions ORDER BY tenant_id, id'),
    sqlRows(server, 'SELECT tenant_id, id, name, token_hash, created FROM api_tokens ' +
      'ORDER BY tenant_id, id'),
    sqlRows(server, 'SELECT COUNT(*) AS n FROM events'),
  ]);
  return { users, groups, members, factors, sessions, transactions, tokens,
    eventCount: events[0].n };
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// --- Serving a data directory more than once (restarts, a store edited while the server is down).
//
//   const data = await createDataDir({ tenants: ['acme'] });   // { dataDir, tenants: [{ name, id, token }] }
//   let server = await serveDataDir(data, { settings });         // like startServer's server
//   await server.stop();                                         // the directory stays
//   server = await serveDataDir(data);                           // same store, new port
//   await server.stop();
//   await removeDataDir(data);
//
// A copy of a stopped server's directory (fs.cp) serves too: { ...data, dataDir: copy }.

// Makes a data directory with `tenants` and an `admin` API token for each, as startServer does,
// without starting a server.
export async function createDataDir({ tenants = ['acme'] } = {}) {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'custos-e2e-'));
  const infos = [];
  for (const name of tenants) {
    const id = await runAdmin(['create-tenant', name, '--data-dir', dataDir]);
    const token = await runAdmin([
      'create-api-token', '--tenant', name, '--data-dir', dataDir, '--name', 'e2e',
    ]);
    infos.push({ name, id, token });
  }
  return { dataDir, tenants: infos };
}

// Deletes a directory made by createDataDir (or a copy), unless KEEP_E2E_DATA is set.
export async function removeDataDir({ dataDir }) {
  if (process.env.KEEP_E2E_DATA) {
    process.stderr.write(`(custos data kept in ${dataDir})\n`);
    return;
  }
  await rm(dataDir, { recursive: true, force: true });
}

// Starts `custos serve` on an existing data directory, on a fresh port. Returns an object with
// the members of startServer's server (baseUrl, dataDir, dbPath, orgUrl, token, tenantId,
// tenant(), exitStatus, logTail, reportFailure, stop), except that stop() leaves the directory
// in place.
export async function serveDataDir(
  { dataDir, tenants = [] },
  { settings = {}, extraArgs = [], signInRateLimit = false } = {},
) {
  const defaults = { ...FAST_HASHING, ...(signInRateLimit ? {} : NO_SIGNIN_RATE_LIMIT) };
  const setArgs = Object.entries({ ...defaults, ...settings }).flatMap(([key, value]) => [
    '--set',
    `${key}=${value}`,
  ]);
  const args = [
    'serve', '--data-dir', dataDir, '--listen', '127.0.0.1', '--port', '0', ...setArgs, ...extraArgs,
  ];
  const child = spawn(custosBin, args, { stdio: ['ignore', 'pipe', 'pipe'], env: childEnv, cwd: dataDir });
  running.add(child);
  const stdout = new LineTail(LOG_TAIL_LINES);
  const stderr = new LineTail(LOG_TAIL_LINES);
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  child.stdout.on('data', (chunk) => stdout.push(chunk));
  child.stderr.on('data', (chunk) => stderr.push(chunk));
  let exitStatus = null;
  const exited = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      running.delete(child);
      exitStatus = { code, signal };
      resolve(exitStatus);
    });
  });
  const logTail = () =>
    `--- custos ${args.join(' ')}\n--- stdout (tail):\n${stdout.text()}\n` +
    `--- stderr (tail):\n${stderr.text()}\n---`;

  const baseUrl = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`custos did not print its listening line in ${START_TIMEOUT_MS} ms\n${logTail()}`));
    }, START_TIMEOUT_MS);
    let seen = '';
    const onData = (chunk) => {
      seen += chunk;
      const m = /custos listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(seen);
      if (m) {
        clearTimeout(timer);
        child.stdout.off('data', onData);
        resolve(m[1]);
      }
    };
    child.stdout.on('data', onData);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`cannot start ${custosBin}: ${err.message}`));
    });
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`custos exited before listening (code ${code}, signal ${signal})\n${logTail()}`));
    });
  });

  const infos = new Map(tenants.map((t) => [t.name, { ...t, orgUrl: `${baseUrl}/t/${t.name}` }]));
  const first = tenants.length ? infos.get(tenants[0].name) : undefined;
  return {
    baseUrl,
    dataDir,
    dbPath: path.join(dataDir, 'custos.db'),
    orgUrl: first?.orgUrl,
    token: first?.token,
    tenantId: first?.id,
    tenant(name) {
      const info = infos.get(name);
      if (!info) throw new Error(`no tenant ${name} in ${dataDir}`);
      return info;
    },
    get exitStatus() {
      return exitStatus;
    },
    logTail,
    reportFailure(what) {
      const status = exitStatus ? ` (server exited: code ${exitStatus.code}, signal ${exitStatus.signal})` : '';
      process.stderr.write(`\n=== custos output (${dataDir}), ${what}${status}\n${logTail()}\n`);
    },
    // SIGTERM, then waits for the exit; SIGKILL after STOP_TIMEOUT_MS. Returns { code, signal,
    // ms, killed }. The data directory stays.
    async stop() {
      const started = Date.now();
      let killed = false;
      if (!exitStatus) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => {
          killed = true;
          child.kill('SIGKILL');
        }, STOP_TIMEOUT_MS);
        await exited;
        clearTimeout(timer);
      }
      return { ...(await exited), ms: Date.now() - started, killed };
    },
  };
}
