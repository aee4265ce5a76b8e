// Benchmarks of the foundation, recorded in docs/benchmarks.md:
//   1. raw Argon2id at the configured parameters (Google Benchmark, bench/argon2_bench.cc);
//   2. sign-ins per second (wrk, bench/signin.lua) against `custos serve` pinned to one core;
//   3. GET /api/v1/users/{id} per second (wrk, bench/get_user.lua), same server.
// Each is run RUNS times; medians are printed as a Markdown table with the sign-in/Argon2id
// ratio. The server gets core SERVER_CORE, wrk gets WRK_CORE (taskset), so "per core" means
// per core.
//
// Usage: node bench/run.mjs [--runs N] [--seconds S] [--store sqlite|postgres|sqlite,postgres]
//                           [--pg URL] [--durable] [--nodes]
//   --store     the server's store: the embedded SQLite file (default), or a PostgreSQL
//               database created for each run (and dropped after it) on the server whose admin
//               URL is --pg or $CUSTOS_TEST_POSTGRES (postgresql://postgres@127.0.0.1:PORT/postgres).
//               Both, comma-separated: each round runs every store in turn (the order alternates
//               between rounds) and the table puts them side by side.
//   --durable   first turn fsync, synchronous_commit and full_page_writes on for the whole
//               PostgreSQL server (ALTER SYSTEM, reload): for the throwaway server of
//               scripts/with-postgres.sh, which runs with them off. The SQLite store fsyncs every
//               commit (store.synchronous = full), so only a durable PostgreSQL compares.
//   --nodes     instead: sign-ins and GET user against ONE `custos serve` on a PostgreSQL
//               database (pinned to SERVER_CORE, wrk on WRK_CORE), against TWO on one database
//               (one per core, each driven by its own wrk, unpinned, same connections per node),
//               and, as a control, against one node with two worker threads on both cores
//               (kNodeConfigs); prints all three and the ratios.
// The CPU time of custos, of PostgreSQL (its postmaster and children, read from /proc: the
// server must run on this machine) and of the whole machine is printed for every load.
// CUSTOS_BIN and ARGON2_BENCH override the binaries (default build/src/cli/custos and
// build/bench/argon2_bench).
import { spawn, execFile, execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir, cpus } from 'node:os';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';

const args = process.argv.slice(2);
const optStr = (name, def) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : def;
};
const opt = (name, def) => Number(optStr(name, def));
const RUNS = opt('--runs', 3);
const SECONDS = opt('--seconds', 10);
const NODES = args.includes('--nodes');
const STORES = optStr('--store', NODES ? 'postgres' : 'sqlite').split(',');
const PG = optStr('--pg', process.env.CUSTOS_TEST_POSTGRES ?? '');
const ROOT = new URL('..', import.meta.url).pathname;
const BIN = process.env.CUSTOS_BIN ?? join(ROOT, 'build/src/cli/custos');
const ARGON = process.env.ARGON2_BENCH ?? join(ROOT, 'build/bench/argon2_bench');
const SERVER_CORE = process.env.SERVER_CORE ?? '1';
const WRK_CORE = process.env.WRK_CORE ?? '0';
const SIGNIN_CONNECTIONS = 2;
const GET_CONNECTIONS = 16;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const log = (...m) => console.error('==>', ...m);
const execFileAsync = promisify(execFile);

for (const s of STORES) {
  if (s !== 'sqlite' && s !== 'postgres') throw new Error(`--store: unknown store ${s}`);
}
if (NODES && STORES.join() !== 'postgres') throw new Error('--nodes runs on --store postgres only');
if (STORES.includes('postgres') && !PG) {
  throw new Error('--store postgres needs --pg URL or CUSTOS_TEST_POSTGRES (scripts/with-postgres.sh)');
}

// ---- PostgreSQL: the server's settings, and one fresh database per run.

const psql = (url, ...sql) => execFileSync('psql', ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1',
  '-d', url, ...sql.flatMap((s) => ['-c', s])], { encoding: 'utf8' }).trim();

const kPgSettings = ['server_version', 'fsync', 'synchronous_commit', 'full_page_writes',
  'wal_sync_method', 'shared_buffers', 'max_connections'];

function pgSettings(url) {
  const row = psql(url, `SELECT concat_ws('|', ${kPgSettings.map((s) => `current_setting('${s}')`).join(', ')})`);
  return Object.fromEntries(row.split('|').map((v, i) => [kPgSettings[i], v]));
}

// ALTER SYSTEM cannot run in a transaction block: one -c each. A reload applies all three
// (none needs a restart); it is asynchronous, so wait until this session sees it.
async function makeDurable(url) {
  psql(url, 'ALTER SYSTEM SET fsync = on', 'ALTER SYSTEM SET synchronous_commit = on',
    'ALTER SYSTEM SET full_page_writes = on', 'SELECT pg_reload_conf()');
  for (let i = 0; i < 50; i++) {
    const s = pgSettings(url);
    if (s.fsync === 'on' && s.synchronous_commit === 'on' && s.full_page_writes === 'on') return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('the PostgreSQL server did not take fsync = on');
}

// `url` with its database name replaced (query parameters kept).
function withDatabase(url, database) {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

let databases = 0;
function createDatabase() {
  const name = `custos_bench_${process.pid}_${databases++}`;
  psql(PG, 'SET client_min_messages = warning', `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`,
    `CREATE DATABASE ${name} TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'`);
  return { url: withDatabase(PG, name), drop: () => psql(PG, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) };
}

// ---- CPU time, to say where the two cores went during a load.

const kTicks = 100;  // USER_HZ: /proc times are in 1/100 s on Linux.
function processCpu(pid) {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(fields[11]) + Number(fields[12])) / kTicks;  // utime + stime
  } catch {
    return 0;
  }
}

function machineCpu() {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const idle = f[3] + f[4];
  return { busy: (f.reduce((a, b) => a + b, 0) - idle) / kTicks, idle: idle / kTicks };
}

// The PostgreSQL server's processes: its postmaster (from postmaster.pid in its data
// directory, which must be on this machine) and the postmaster's children. The custos
// connections are pooled, so their backends live through a load.
function pgPids(url) {
  const dataDir = psql(url, "SELECT current_setting('data_directory')");
  const postmaster = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
  const children = execFileSync('ps', ['-o', 'pid=', '--ppid', String(postmaster)], { encoding: 'utf8' });
  return [postmaster, ...children.split('\n').filter((l) => l.trim()).map(Number)];
}

// `groups`: name -> a function listing its pids now. A process that starts during the load
// counts from zero; one that ends during it is missed.
function cpuSampler(groups) {
  const read = () => Object.fromEntries(Object.entries(groups).map(([k, list]) =>
    [k, new Map(list().map((p) => [p, processCpu(p)]))]));
  const start = { machine: machineCpu(), groups: read() };
  return () => {
    const end = { machine: machineCpu(), groups: read() };
    const wall = (end.machine.busy + end.machine.idle - start.machine.busy - start.machine.idle) / cpus().length;
    const used = (k) => [...end.groups[k]].reduce((sum, [p, t]) => sum + t - (start.groups[k].get(p) ?? 0), 0);
    return {
      machine: (end.machine.busy - start.machine.busy) / wall,
      ...Object.fromEntries(Object.keys(groups).map((k) => [k, used(k) / wall])),
    };
  };
}

// ---- The measurements.

function argon2() {
  const out = execFileSync('taskset', ['-c', SERVER_CORE, ARGON,
    '--benchmark_format=json', '--benchmark_repetitions=5',
    '--benchmark_report_aggregates_only=true'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  const result = {};
  for (const b of JSON.parse(out).benchmarks) {
    if (b.aggregate_name !== 'median') continue;
    const ms = b.real_time;  // kMillisecond
    result[b.run_name.includes('Verify') ? 'verify' : 'hash'] = 1000 / ms;
  }
  return result;
}

// Settings every custos command of a run gets: the store, and one public URL, so that every
// node of a run signs the log under the same origin and key (docs/deployment.md).
const storeSets = (storeUrl) => [...(storeUrl ? ['--set', `store.url=${storeUrl}`] : []),
  '--set', 'server.public_base_url=http://custos-bench.example'];

// A port nothing listens on now. With a public URL set, `custos serve` announces that URL, not
// its port, so the port is chosen here.
const freePort = () => new Promise((resolve, reject) => {
  const srv = createServer();
  srv.on('error', reject);
  srv.listen(0, '127.0.0.1', () => {
    const { port } = srv.address();
    srv.close(() => resolve(port));
  });
});

function provision(dataDir, storeUrl) {
  execFileSync(BIN, ['admin', 'create-tenant', 'bench', '--data-dir', dataDir, ...storeSets(storeUrl)]);
  return execFileSync(BIN, ['admin', 'create-api-token', '--tenant', 'bench',
    '--data-dir', dataDir, ...storeSets(storeUrl)], { encoding: 'utf8' }).trim();
}

// `core` pins the server (null: not pinned); `workers` is server.worker_threads.
async function startServer(dataDir, storeUrl, core, workers = 1) {
  const port = await freePort();
  const argv = [BIN, 'serve', '--data-dir', dataDir,
    '--port', String(port), '--set', `server.worker_threads=${workers}`, '--set', 'server.network_threads=1',
    '--set', 'log.level=warn', ...storeSets(storeUrl),
    // wrk sends every sign-in from one address, which the per-address limit would refuse.
    '--set', 'server.authn_rate_per_ip=0'];
  const child = core === null
    ? spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'inherit'] })
    : spawn('taskset', ['-c', core, ...argv], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise((resolve, reject) => {
    let text = '';
    child.stdout.on('data', (d) => {
      text += d;
      if (/custos listening on /.test(text)) resolve();
    });
    child.on('exit', (code) => reject(new Error(`custos serve exited with ${code}`)));
  });
  return { child, url: `http://127.0.0.1:${port}` };
}

async function stopServer(server) {
  if (server.child.exitCode !== null) return;
  const exited = new Promise((r) => server.child.on('exit', r));
  server.child.kill('SIGTERM');
  await exited;
}

async function createUser(url, token) {
  const user = 'bench@bench.example', password = 'bench-password-for-wrk';
  const res = await fetch(`${url}/t/bench/api/v1/users?activate=true`, {
    method: 'POST',
    headers: { Authorization: `SSWS ${token}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ profile: { login: user, email: user, firstName: 'B', lastName: 'M' },
      credentials: { password: { value: password } } }),
  });
  if (!res.ok) throw new Error(`create user: HTTP ${res.status} ${await res.text()}`);
  return { id: (await res.json()).id, user, password };
}

function parseWrk(script, out) {
  const rps = Number(out.match(/Requests\/sec:\s+([\d.]+)/)[1]);
  const non2xx = Number(out.match(/Non-2xx or 3xx responses: (\d+)/)?.[1] ?? 0);
  const errors = out.match(/Socket errors: .*/)?.[0];
  const p50 = out.match(/^\s+50%\s+(\S+)/m)?.[1];
  if (non2xx > 0) throw new Error(`${script}: ${non2xx} failed responses`);
  if (errors) log(`${script}: ${errors}`);
  return { rps, p50 };
}

// One wrk; `core` pins it, null leaves it to the scheduler.
async function wrk(script, url, connections, env, core) {
  const argv = ['-t1', `-c${connections}`, `-d${SECONDS}s`, '--latency', '-s', join(ROOT, 'bench', script), url];
  const { stdout } = core === null
    ? await execFileAsync('wrk', argv, { env: { ...process.env, ...env } })
    : await execFileAsync('taskset', ['-c', core, 'wrk', ...argv], { env: { ...process.env, ...env } });
  return parseWrk(script, stdout);
}

// The two loads against `servers` (one wrk each, at the same time, with `scale` times the usual
// connections); rates are summed.
async function loads(servers, user, token, wrkCores, cpuGroups, scale = 1) {
  const result = {};
  for (const [name, script, connections, path, env] of [
    ['signin', 'signin.lua', SIGNIN_CONNECTIONS, '/t/bench/api/v1/authn',
      { BENCH_USER: user.user, BENCH_PASSWORD: user.password }],
    ['getUser', 'get_user.lua', GET_CONNECTIONS, `/t/bench/api/v1/users/${user.id}`,
      { BENCH_TOKEN: token }],
  ]) {
    const sample = cpuGroups ? cpuSampler(cpuGroups) : null;
    const each = await Promise.all(servers.map((s, i) =>
      wrk(script, `${s.url}${path}`, connections * scale, env, wrkCores[i])));
    result[name] = each.reduce((sum, r) => sum + r.rps, 0);
    result[`${name}P50`] = each.map((r) => r.p50).join(' / ');
    if (sample) result[`${name}Cpu`] = sample();
  }
  return result;
}

// One store's measurements on a fresh store: sign-in and GET user against one server.
async function measureStore(kind) {
  const dataDir = mkdtempSync(join(tmpdir(), 'custos-bench-'));
  const db = kind === 'postgres' ? createDatabase() : null;
  let server = null;
  try {
    const token = provision(dataDir, db?.url);
    server = await startServer(dataDir, db?.url, SERVER_CORE);
    const user = await createUser(server.url, token);
    log(`${kind}: sign-in, then GET /api/v1/users/{id}`);
    const pids = { custos: () => [server.child.pid] };
    if (db) pids.postgres = () => pgPids(db.url);
    return await loads([server], user, token, [WRK_CORE], pids);
  } finally {
    if (server) await stopServer(server);
    db?.drop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

// The configurations of --nodes, each on a fresh PostgreSQL database:
//   one: one node pinned to SERVER_CORE, one worker thread, wrk on WRK_CORE (as --store);
//   two: two nodes, one per core, one worker thread each; one wrk per node, not pinned (both
//        cores have a node), each with the connections of `one`;
//   wide: the control: one node with two worker threads, not pinned, one wrk (not pinned) with
//        the connections of `two` together; tells more processes from more threads.
const kNodeConfigs = {
  one: { label: 'one node', nodes: 1, workers: 1, cores: [SERVER_CORE], wrkCores: [WRK_CORE], scale: 1 },
  two: { label: 'two nodes', nodes: 2, workers: 1, cores: ['0', '1'], wrkCores: [null, null], scale: 1 },
  wide: { label: 'one node, 2 workers, unpinned', nodes: 1, workers: 2, cores: [null], wrkCores: [null], scale: 2 },
};

// Every node gets its own data directory with the same seal.key, as docs/deployment.md asks.
async function measureNodes(config) {
  const dirs = Array.from({ length: config.nodes }, () => mkdtempSync(join(tmpdir(), 'custos-bench-')));
  const db = createDatabase();
  const servers = [];
  try {
    const token = provision(dirs[0], db.url);
    for (const d of dirs.slice(1)) copyFileSync(join(dirs[0], 'seal.key'), join(d, 'seal.key'));
    for (let i = 0; i < config.nodes; i++) {
      servers.push(await startServer(dirs[i], db.url, config.cores[i], config.workers));
    }
    const user = await createUser(servers[0].url, token);
    log(`${config.label}: sign-in, then GET /api/v1/users/{id}`);
    return await loads(servers, user, token, config.wrkCores,
      { custos: () => servers.map((s) => s.child.pid), postgres: () => pgPids(db.url) }, config.scale);
  } finally {
    for (const s of servers) await stopServer(s);
    db.drop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }
}

// ---- Reports.

const fmt1 = (x) => x.toFixed(1);
const fmt0 = (x) => Math.round(x).toLocaleString('en-US').replace(/,/g, ' ');
const fmtRate = (x) => (x >= 1000 ? fmt0(x) : fmt1(x));
// The p50 latency of `key`'s load in the run whose rate is the median.
const p50 = (r, key) => r[`${key}P50`][r[key].indexOf(median(r[key]))];
const kStoreNames = { sqlite: 'SQLite', postgres: 'PostgreSQL' };

function header(pg) {
  console.log(`Machine: ${cpus()[0].model}, ${cpus().length} cores; ${new Date().toISOString()}`);
  console.log(`Runs: ${RUNS} x ${SECONDS} s; server on core ${SERVER_CORE}, wrk on core ${WRK_CORE}` +
    (NODES ? ' (one node; two nodes: one per core, wrks unpinned; control: not pinned)' : ''));
  if (pg) {
    console.log(`PostgreSQL ${pg.server_version}: ${kPgSettings.slice(1).map((k) => `${k}=${pg[k]}`).join(', ')}` +
      (pg.fsync === 'on' && pg.synchronous_commit === 'on' ? '' : '  ** NOT DURABLE: compare with care (--durable) **'));
  }
  console.log('');
}

// Where the cores went during each load, medians of the runs: cores used by custos and by
// PostgreSQL (of the machine's 2), the machine as a whole (other engineers' work included), and
// each one's CPU per request.
function reportCpu(label, r) {
  for (const [key, load] of [['signin', 'sign-in'], ['getUser', 'GET user']]) {
    const runs = r[`${key}Cpu`];
    const perRequest = (k) => median(runs.map((c, i) => (1e6 * c[k]) / r[key][i]));
    const parts = [`custos ${median(runs.map((c) => c.custos)).toFixed(2)} cores (${fmt0(perRequest('custos'))} µs/request)`];
    if (runs[0].postgres !== undefined) {
      parts.push(`PostgreSQL ${median(runs.map((c) => c.postgres)).toFixed(2)} (${fmt0(perRequest('postgres'))} µs/request)`);
    }
    parts.push(`machine ${median(runs.map((c) => c.machine)).toFixed(2)} busy`);
    console.log(`- ${label}, ${load}: ${parts.join(', ')}`);
  }
}

function reportStores(argons, rows) {
  const hash = argons.map((a) => a.hash), verify = argons.map((a) => a.verify);
  if (STORES.length === 1) {
    const r = rows[STORES[0]];
    console.log(`Store: ${kStoreNames[STORES[0]]}\n`);
    console.log('| measure | median of runs | all runs |');
    console.log('|---|---|---|');
    console.log(`| Argon2id hash, per core | ${fmt1(median(hash))} /s | ${hash.map(fmt1).join(', ')} |`);
    console.log(`| Argon2id verify, per core | ${fmt1(median(verify))} /s | ${verify.map(fmt1).join(', ')} |`);
    console.log(`| sign-in (POST /authn), per core | ${fmt1(median(r.signin))} /s (p50 ${p50(r, 'signin')}) | ${r.signin.map(fmt1).join(', ')} |`);
    console.log(`| GET /users/{id}, one core | ${fmt1(median(r.getUser))} /s (p50 ${p50(r, 'getUser')}) | ${r.getUser.map(fmt1).join(', ')} |`);
    const ratios = r.signin.map((s, i) => s / verify[i]);
    console.log(`\nSign-in / raw Argon2id verify: ${(100 * median(ratios)).toFixed(1)}% (median of per-run ratios: ${ratios.map((x) => (100 * x).toFixed(1) + '%').join(', ')})\n`);
    reportCpu(kStoreNames[STORES[0]], r);
    return;
  }
  const [a, b] = STORES;
  console.log(`| measure | ${kStoreNames[a]} | ${kStoreNames[b]} | ${kStoreNames[b]} / ${kStoreNames[a]} |`);
  console.log('|---|---|---|---|');
  console.log(`| Argon2id verify, per core (same run) | ${fmt1(median(verify))} /s (${verify.map(fmt1).join(', ')}) | | |`);
  for (const [key, label] of [['signin', 'sign-in (POST /authn), per core'], ['getUser', 'GET /users/{id}, one core']]) {
    const ra = rows[a][key], rb = rows[b][key];
    const ratios = ra.map((x, i) => rb[i] / x);
    console.log(`| ${label} | ${fmtRate(median(ra))} /s (p50 ${p50(rows[a], key)}; ${ra.map(fmtRate).join(', ')}) ` +
      `| ${fmtRate(median(rb))} /s (p50 ${p50(rows[b], key)}; ${rb.map(fmtRate).join(', ')}) ` +
      `| ${median(ratios).toFixed(2)} (${ratios.map((x) => x.toFixed(2)).join(', ')}) |`);
  }
  console.log('');
  for (const s of STORES) {
    const ratios = rows[s].signin.map((x, i) => x / verify[i]);
    console.log(`${kStoreNames[s]}: sign-in / raw Argon2id verify ${(100 * median(ratios)).toFixed(1)}% (per run ${ratios.map((x) => (100 * x).toFixed(0) + '%').join(', ')})`);
  }
  console.log('\nCores busy during each load (of 2; medians of the runs):');
  for (const s of STORES) reportCpu(kStoreNames[s], rows[s]);
}

function reportNodes(rows) {
  const { one, two, wide } = rows;
  const ratio = (x, y) => {
    const r = x.map((v, i) => v / y[i]);
    return `${median(r).toFixed(2)}× (${r.map((v) => v.toFixed(2)).join(', ')})`;
  };
  console.log(`| measure | ${kNodeConfigs.one.label} | ${kNodeConfigs.two.label} | two / one | ${kNodeConfigs.wide.label} | two nodes / this |`);
  console.log('|---|---|---|---|---|---|');
  for (const [key, label] of [['signin', 'sign-in (POST /authn)'], ['getUser', 'GET /users/{id}']]) {
    const cell = (r) => `${fmtRate(median(r[key]))} /s (${r[key].map(fmtRate).join(', ')})`;
    console.log(`| ${label} | ${cell(one)} | ${cell(two)} | **${ratio(two[key], one[key])}** | ${cell(wide)} | ${ratio(two[key], wide[key])} |`);
  }
  console.log('\np50 latency (of the run with the median rate):');
  for (const [name, r] of Object.entries(rows)) {
    console.log(`- ${kNodeConfigs[name].label}: sign-in ${p50(r, 'signin')}, GET user ${p50(r, 'getUser')}`);
  }
  console.log('\nCores busy during each load (of 2; medians of the runs):');
  for (const [name, r] of Object.entries(rows)) reportCpu(kNodeConfigs[name].label, r);
}

async function main() {
  if (STORES.includes('postgres') && args.includes('--durable')) await makeDurable(PG);
  const pg = STORES.includes('postgres') ? pgSettings(PG) : null;
  if (NODES) {
    const names = Object.keys(kNodeConfigs);
    const rows = Object.fromEntries(names.map((n) => [n, {}]));
    for (let run = 1; run <= RUNS; run++) {
      for (const n of run % 2 ? names : [...names].reverse()) {
        log(`run ${run}/${RUNS}: ${kNodeConfigs[n].label}`);
        const r = await measureNodes(kNodeConfigs[n]);
        for (const [k, v] of Object.entries(r)) (rows[n][k] ??= []).push(v);
      }
    }
    header(pg);
    reportNodes(rows);
    return;
  }
  const argons = [];
  const rows = Object.fromEntries(STORES.map((s) => [s, {}]));
  for (let run = 1; run <= RUNS; run++) {
    log(`run ${run}/${RUNS}: Argon2id`);
    argons.push(argon2());
    for (const s of run % 2 ? STORES : [...STORES].reverse()) {
      log(`run ${run}/${RUNS}: ${s}`);
      const r = await measureStore(s);
      for (const [k, v] of Object.entries(r)) (rows[s][k] ??= []).push(v);
    }
  }
  header(pg);
  reportStores(argons, rows);
}

main().catch((e) => { console.error(e); process.exit(1); });
