// Starts a real `custos serve` for end-to-end tests, and reads its store (SQLite, or PostgreSQL
// when CUSTOS_TEST_POSTGRES is set).
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
// KEEP_E2E_DATA=1 keeps the data directories (and their databases) for a look afterwards.
//
// On PostgreSQL: with CUSTOS_TEST_POSTGRES set to a server's admin URL (scripts/with-postgres.sh
// sets it), createDataDir makes a new database for each data directory, and every custos command
// that names the directory with --data-dir must get `--set store.url=…` for it: withStore(args)
// adds it (runAdmin and serveDataDir call it; a test that spawns custos itself must too). So
// that a command which misses it fails instead of quietly making a SQLite store, the data
// directory holds a *directory* named custos.db, which SQLite cannot open. sqlRows and sqlExec
// run their SQL on whichever store the directory has; copyDataDir copies the database too;
// removeDataDir drops it.

import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cp, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
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

// The admin URL of the PostgreSQL server the tests run on, or '' for SQLite.
export const postgresAdminUrl = process.env.CUSTOS_TEST_POSTGRES || '';
export const onPostgres = postgresAdminUrl !== '';

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
    const { stdout } = await execFileP(custosBin, withStore(['admin', ...args]), {
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
      await removeDataDir(data);
    } else {
      process.stderr.write(`(custos data kept in ${describeStore(data.dataDir)})\n`);
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

// --- The store under a data directory: its SQLite file, or its PostgreSQL database.

// dataDir (absolute) -> { name, url } of its database; only on PostgreSQL.
const databases = new Map();

const PSQL_TIMEOUT_MS = 30_000;

// Runs `sql` with psql on `url`; returns stdout. Several statements in `sql` run in one
// transaction (psql -c), and the first error stops them.
async function psql(url, sql) {
  try {
    const { stdout } = await execFileP(
      'psql',
      ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-d', url, '-c', sql],
      { timeout: PSQL_TIMEOUT_MS, maxBuffer: 256 * 1024 * 1024, env: childEnv },
    );
    return stdout;
  } catch (err) {
    throw new Error(`psql ${sql}\nfailed: ${err.stderr || err.message}`);
  }
}

// The admin URL with its database replaced by `name` (query parameters kept).
function databaseUrl(name) {
  const [base, ...query] = postgresAdminUrl.split('?');
  const at = base.indexOf('/', base.indexOf('://') + 3);
  return `${at < 0 ? base : base.slice(0, at)}/${name}${query.length ? `?${query.join('?')}` : ''}`;
}

// Makes a new database for `dataDir` (a copy of `template`'s when given, which must not be in
// use) and puts the guard custos.db directory in it.
async function createDatabase(dataDir, { template } = {}) {
  const name = `custos_e2e_${process.pid}_${randomBytes(4).toString('hex')}`;
  const from = template
    ? `TEMPLATE ${template.name}`
    : "TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'";
  await psql(postgresAdminUrl, `CREATE DATABASE ${name} ${from}`);
  const info = { name, url: databaseUrl(name) };
  databases.set(path.resolve(dataDir), info);
  await mkdir(path.join(dataDir, 'custos.db'), { recursive: true });
  await writeFile(
    path.join(dataDir, 'custos.db', 'README'),
    `This data directory's store is the PostgreSQL database ${info.url}.\n` +
      'custos.db is a directory so that a custos command without --set store.url=... fails.\n',
  );
  return info;
}

function databaseOf(dataDir) {
  const info = databases.get(path.resolve(dataDir));
  if (!info) {
    throw new Error(
      `${dataDir} has no PostgreSQL database: make data directories with createDataDir or ` +
        'copyDataDir (CUSTOS_TEST_POSTGRES is set)',
    );
  }
  return info;
}

// The store URL of `dataDir` (PostgreSQL), or undefined (SQLite).
export function storeUrl(dataDir) {
  return onPostgres ? databaseOf(dataDir).url : undefined;
}

// A data directory and, on PostgreSQL, its database, for messages.
function describeStore(dataDir) {
  return onPostgres && databases.has(path.resolve(dataDir))
    ? `${dataDir}, database ${databaseOf(dataDir).url}`
    : dataDir;
}

// `args` of a custos command, plus `--set store.url=…` on PostgreSQL when they name a data
// directory (--data-dir DIR or --data-dir=DIR). Every custos command of the tests that takes
// --data-dir goes through here.
export function withStore(args) {
  if (!onPostgres) return args;
  let dataDir;
  args.forEach((arg, i) => {
    if (arg === '--data-dir' && i + 1 < args.length) dataDir = args[i + 1];
    else if (arg.startsWith('--data-dir=')) dataDir = arg.slice('--data-dir='.length);
  });
  return dataDir === undefined ? args : [...args, '--set', `store.url=${storeUrl(dataDir)}`];
}

// Rows of `sql` (a SELECT) from the store of `where` (a server, or anything with a dataDir), as
// objects keyed by column name. SQLite: the sqlite3 tool, read-only (the server may be running;
// the store is in WAL mode). PostgreSQL: psql, with the rows turned into JSON by json_agg, so
// numbers stay numbers; BLOB/BYTEA columns differ (hex text on PostgreSQL).
export async function sqlRows(where, sql) {
  const query = sql.trim().replace(/;+$/, '');
  if (onPostgres) {
    const out = await psql(
      databaseOf(where.dataDir).url,
      `SELECT coalesce(json_agg(row_to_json(q)), '[]'::json) FROM (${query}) q`,
    );
    return JSON.parse(out);
  }
  const { stdout } = await execFileP(
    'sqlite3',
    ['-readonly', '-json', '-cmd', '.timeout 10000', path.join(where.dataDir, 'custos.db'), query],
    { timeout: 30_000, maxBuffer: 256 * 1024 * 1024 },
  );
  return stdout.trim() ? JSON.parse(stdout) : [];
}

// Runs `sql` (statements separated by ';') on the store of `where` in one transaction, stopping
// at the first error. For edits behind a stopped server's back, or behind a running one's (on
// SQLite it waits up to 10 s for the server's write lock).
export async function sqlExec(where, sql) {
  if (onPostgres) return (await psql(databaseOf(where.dataDir).url, sql)).trim();
  return new Promise((resolve, reject) => {
    execFile(
      'sqlite3',
      ['-bail', '-cmd', '.timeout 10000', path.join(where.dataDir, 'custos.db'), `BEGIN; ${sql}; COMMIT;`],
      { timeout: 30_000 },
      (err, stdout, stderr) => {
        if (err) reject(new Error(`sqlite3 ${sql}: ${stderr}`));
        else resolve(stdout.trim());
      },
    );
  });
}

// SQL that differs between the two stores.
export const sqlDialect = onPostgres
  ? {
      hex: (column) => `upper(encode(${column}, 'hex'))`,
      jsonText: (column, ...keys) => `(${column}::json #>> '{${keys.join(',')}}')`,
      lastEventSeq: "currval(pg_get_serial_sequence('events', 'seq'))",
    }
  : {
      hex: (column) => `hex(${column})`,
      jsonText: (column, ...keys) => `json_extract(${column}, '$.${keys.join('.')}')`,
      lastEventSeq: 'last_insert_rowid()',
    };

// Everything about users, groups, memberships and factors in the store (all tenants), plus the
// number of events: equal snapshots mean a request changed nothing.
export async function storeSnapshot(server) {
  const [users, groups, members, factors, sessions, transactions, tokens, events] = await Promise.all([
    sqlRows(server, 'SELECT * FROM users ORDER BY tenant_id, id'),
    sqlRows(server, 'SELECT * FROM groups ORDER BY tenant_id, id'),
    sqlRows(server, 'SELECT * FROM group_members ORDER BY tenant_id, group_id, user_id'),
    sqlRows(
      server,
      `SELECT tenant_id, id, user_id, factor_type, provider, status, ${sqlDialect.hex('sealed_secret')} AS secret, ` +
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
// A copy of a stopped server's store serves too: copyDataDir(data, dir) (not fs.cp, which on
// PostgreSQL would leave both directories on one database).

// Makes a data directory with `tenants` and an `admin` API token for each, as startServer does,
// without starting a server.
export async function createDataDir({ tenants = ['acme'] } = {}) {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'custos-e2e-'));
  if (onPostgres) await createDatabase(dataDir);
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

// A copy of the data directory of `data` (whose server is stopped) at `dataDir`, which must not
// exist; on PostgreSQL with a copy of its database. Returns { ...data, dataDir }.
export async function copyDataDir(data, dataDir) {
  await cp(data.dataDir, dataDir, { recursive: true, errorOnExist: true, force: false });
  if (onPostgres) {
    // The copy's guard directory came along; its README names the new database.
    await createDatabase(dataDir, { template: databaseOf(data.dataDir) });
  }
  return { ...data, dataDir };
}

// Deletes a directory made by createDataDir or copyDataDir, and its database, unless
// KEEP_E2E_DATA is set.
export async function removeDataDir({ dataDir }) {
  if (process.env.KEEP_E2E_DATA) {
    process.stderr.write(`(custos data kept in ${describeStore(dataDir)})\n`);
    return;
  }
  const database = onPostgres ? databases.get(path.resolve(dataDir)) : undefined;
  if (database) {
    await psql(postgresAdminUrl, `DROP DATABASE IF EXISTS ${database.name} WITH (FORCE)`);
    databases.delete(path.resolve(dataDir));
  }
  await rm(dataDir, { recursive: true, force: true });
}

// Starts `custos serve` on an existing data directory, on a fresh port. Returns an object with
// the members of startServer's server (baseUrl, dataDir, dbPath, storeUrl, orgUrl, token,
// tenantId, tenant(), exitStatus, logTail, reportFailure, stop), except that stop() leaves the
// directory in place. dbPath is the SQLite file, storeUrl the PostgreSQL database (undefined on
// the other store).
export async function serveDataDir(
  { dataDir, tenants = [] },
  { settings = {}, extraArgs = [], signInRateLimit = false } = {},
) {
  const defaults = { ...FAST_HASHING, ...(signInRateLimit ? {} : NO_SIGNIN_RATE_LIMIT) };
  const setArgs = Object.entries({ ...defaults, ...settings }).flatMap(([key, value]) => [
    '--set',
    `${key}=${value}`,
  ]);
  const args = withStore([
    'serve', '--data-dir', dataDir, '--listen', '127.0.0.1', '--port', '0', ...setArgs, ...extraArgs,
  ]);
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
    dbPath: onPostgres ? undefined : path.join(dataDir, 'custos.db'),
    storeUrl: storeUrl(dataDir),
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
      process.stderr.write(
        `\n=== custos output (${describeStore(dataDir)}), ${what}${status}\n${logTail()}\n`,
      );
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
