// OpenID Connect benchmark, recorded in docs/benchmarks.md ("OpenID Connect"): client-credentials
// grants/s and introspections/s of Custos against node-oidc-provider (bench/oidc/peer.mjs) with
// an equivalent ES256 JWT access-token configuration and its in-memory store, plus the raw ES256
// signing rate of `openssl speed -elapsed ecdsap256`, all in the same run.
//
// Each round: openssl on the server core; then both servers one after the other (the order
// alternates between rounds), each started fresh, pinned to SERVER_CORE (taskset), driven by one
// wrk thread pinned to WRK_CORE:
//   1. POST token, grant_type=client_credentials, client_secret_basic (a new ES256 JWT each);
//   2. POST introspection of one access token, client_secret_basic.
// Each load gets a short warm-up (not counted) and then SECONDS of measurement. Any non-2xx
// answer fails the run; the introspected token is checked active before and after. The peak RSS
// (VmHWM) of each server is read after its two loads. The CPU time of the server process and of
// wrk during each load is recorded too (is the server the limit? what does one request cost?).
// Medians of rounds are printed as Markdown, then every round as JSON.
//
// Usage: node bench/oidc/run.mjs [--runs 5] [--seconds 10] [--connections 64] [--warmup 2]
//                                [--worker-threads 64] [--ssl-seconds 10]
// CUSTOS_BIN overrides the server binary (default build/src/cli/custos); SERVER_CORE (0) and
// WRK_CORE (1) the cores.
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir, cpus } from 'node:os';
import { join } from 'node:path';

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : def;
};
const RUNS = opt('--runs', 5);
const SECONDS = opt('--seconds', 10);
const CONNECTIONS = opt('--connections', 64);
const WARMUP = opt('--warmup', 2);
const WORKERS = opt('--worker-threads', 64);
const SSL_SECONDS = opt('--ssl-seconds', 10);
const ROOT = new URL('../..', import.meta.url).pathname;
const BIN = process.env.CUSTOS_BIN ?? join(ROOT, 'build/src/cli/custos');
const PEER = join(ROOT, 'bench/oidc/peer.mjs');
const LUA = join(ROOT, 'bench/oidc/form_post.lua');
const SERVER_CORE = process.env.SERVER_CORE ?? '0';
const WRK_CORE = process.env.WRK_CORE ?? '1';
const TENANT = 'bench';
const OPAQUE_RESOURCE = 'urn:custos:bench:opaque';  // as in peer.mjs
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const log = (...m) => console.error('==>', ...m);
const basic = (id, secret) =>
  Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64');

// ES256 signatures and verifications per second on the server core.
function opensslSpeed() {
  const out = execFileSync('taskset', ['-c', SERVER_CORE, 'openssl', 'speed', '-elapsed',
    '-seconds', String(SSL_SECONDS), 'ecdsap256'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  const m = out.match(/256 bits ecdsa \(nistp256\)\s+\S+\s+\S+\s+([\d.]+)\s+([\d.]+)/);
  if (!m) throw new Error(`cannot parse openssl speed output:\n${out}`);
  return { sign: Number(m[1]), verify: Number(m[2]) };
}

// Waits for `pattern` on the child's stdout; resolves with its first group.
function listening(child, pattern, name) {
  return new Promise((resolve, reject) => {
    let text = '';
    child.stdout.on('data', (d) => {
      text += d;
      const m = text.match(pattern);
      if (m) resolve(m[1]);
    });
    child.on('exit', (code) => reject(new Error(`${name} exited with ${code}`)));
  });
}

async function stop(child) {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.on('exit', r));
  child.kill('SIGTERM');
  await exited;
}

async function post(url, auth, form, retry = true) {
  let res;
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: { Authorization: `Basic ${auth}`, 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(form).toString(),
    });
  } catch (e) {
    // A kept-alive connection the server closed while idle (oidc-provider after 5 s): once more.
    if (retry && e.cause?.code === 'UND_ERR_SOCKET') return post(url, auth, form, false);
    throw e;
  }
  const text = await res.text();
  if (res.status !== 200) throw new Error(`POST ${url}: ${res.status} ${text}`);
  return JSON.parse(text);
}

function checkEs256Jwt(token, name) {
  const header = JSON.parse(Buffer.from(token.split('.')[0], 'base64url').toString());
  if (header.alg !== 'ES256' || !/at\+jwt/i.test(header.typ ?? '')) {
    throw new Error(`${name}: not an ES256 at+jwt access token: ${JSON.stringify(header)}`);
  }
}

async function startCustos() {
  const dataDir = mkdtempSync(join(tmpdir(), 'custos-oidc-bench-'));
  execFileSync(BIN, ['admin', 'create-tenant', TENANT, '--data-dir', dataDir]);
  const apiToken = execFileSync(BIN, ['admin', 'create-api-token', '--tenant', TENANT,
    '--data-dir', dataDir], { encoding: 'utf8' }).trim();
  // Each grant waits for its System Log event's commit (fsynced, store.synchronous = full, the
  // default) on a worker thread, so many workers let the commits of concurrent grants group.
  const child = spawn('taskset', ['-c', SERVER_CORE, BIN, 'serve', '--data-dir', dataDir,
    '--port', '0', '--set', `server.worker_threads=${WORKERS}`, '--set', 'server.network_threads=1',
    '--set', 'log.level=warn'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await listening(child, /custos listening on (\S+)/, 'custos serve');
  const res = await fetch(`${url}/t/${TENANT}/api/v1/apps`, {
    method: 'POST',
    headers: { Authorization: `SSWS ${apiToken}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({
      label: 'Benchmark service',
      credentials: { oauthClient: { token_endpoint_auth_method: 'client_secret_basic' } },
      settings: { oauthClient: { application_type: 'service', grant_types: ['client_credentials'], response_types: [] } },
    }),
  });
  const app = await res.json();
  if (res.status !== 200) throw new Error(`creating the app: ${res.status} ${JSON.stringify(app)}`);
  const { client_id: id, client_secret: secret } = app.credentials.oauthClient;
  const base = `${url}/t/${TENANT}/oauth2/v1`;
  return {
    name: 'Custos', child, auth: basic(id, secret),
    token: `${base}/token`, introspect: `${base}/introspect`,
    grantForm: { grant_type: 'client_credentials' },
    introspectedForm: { grant_type: 'client_credentials' },
    cleanup: () => rmSync(dataDir, { recursive: true, force: true }),
  };
}

async function startPeer() {
  const id = 'bench';
  const secret = 'bench-secret-for-wrk-0123456789abcdef';
  const child = spawn('taskset', ['-c', SERVER_CORE, process.execPath, PEER], {
    stdio: ['ignore', 'pipe', 'ignore'],
    env: { ...process.env, NODE_ENV: 'production', PORT: '0', BENCH_CLIENT_ID: id, BENCH_CLIENT_SECRET: secret },
  });
  const url = await listening(child, /peer listening on (\S+)/, 'oidc-provider peer');
  return {
    name: 'oidc-provider', child, auth: basic(id, secret),
    token: `${url}/token`, introspect: `${url}/token/introspection`,
    grantForm: { grant_type: 'client_credentials' },
    // oidc-provider does not introspect JWT access tokens; an opaque one from the same client.
    introspectedForm: { grant_type: 'client_credentials', resource: OPAQUE_RESOURCE },
    cleanup: () => {},
  };
}

// CPU seconds (user + system) of a process so far.
function cpuSeconds(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;  // utime, stime in USER_HZ (100)
}

// Busy and total jiffies of one core, from /proc/stat.
function coreTimes(core) {
  const line = readFileSync('/proc/stat', 'utf8').split('\n').find((l) => l.startsWith(`cpu${core} `));
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const idle = v[3] + v[4];
  const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
  return { busy: total - idle, total };
}

function peakRssMiB(pid) {
  const kib = Number(readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmHWM:\s+(\d+) kB/)[1]);
  return kib / 1024;
}

function wrk(url, env, seconds, pid) {
  const cpu0 = cpuSeconds(pid);
  const s0 = coreTimes(SERVER_CORE);
  // /usr/bin/time reports wrk's own CPU time: whether the client, not the server, was the limit.
  const ran = spawnSync('taskset', ['-c', WRK_CORE, '/usr/bin/time', '-f', 'wrk-cpu %U %S', 'wrk',
    '-t1', `-c${CONNECTIONS}`, `-d${seconds}s`, '--latency', '-s', LUA, url],
  { encoding: 'utf8', env: { ...process.env, ...env } });
  if (ran.status !== 0) throw new Error(`wrk ${url} failed (${ran.status}): ${ran.stderr}`);
  const out = ran.stdout;
  const [, user, sys] = ran.stderr.match(/wrk-cpu ([\d.]+) ([\d.]+)/);
  const s1 = coreTimes(SERVER_CORE);
  const rps = Number(out.match(/Requests\/sec:\s+([\d.]+)/)[1]);
  const non2xx = Number(out.match(/Non-2xx or 3xx responses: (\d+)/)?.[1] ?? 0);
  const socketErrors = out.match(/Socket errors: (.*)/)?.[1];
  if (non2xx > 0) throw new Error(`${url}: ${non2xx} non-2xx responses\n${out}`);
  if (socketErrors) throw new Error(`${url}: socket errors ${socketErrors}\n${out}`);
  return {
    rps,
    p50: out.match(/50%\s+(\S+)/)?.[1],
    p99: out.match(/99%\s+(\S+)/)?.[1],
    serverCpu: (cpuSeconds(pid) - cpu0) / seconds,  // cores used by the server process
    serverCoreBusy: (s1.busy - s0.busy) / (s1.total - s0.total),  // by anyone
    wrkCpu: (Number(user) + Number(sys)) / seconds,  // cores used by wrk itself
  };
}

async function measure(start) {
  const server = await start();
  const pid = server.child.pid;
  try {
    const granted = await post(server.token, server.auth, server.grantForm);
    checkEs256Jwt(granted.access_token, server.name);
    const { access_token: introspected } = await post(server.token, server.auth, server.introspectedForm);
    const active = async () => {
      const r = await post(server.introspect, server.auth, { token: introspected });
      if (r.active !== true) throw new Error(`${server.name}: introspected token not active: ${JSON.stringify(r)}`);
    };
    await active();
    const grantEnv = { BENCH_BASIC: server.auth, BENCH_BODY: new URLSearchParams(server.grantForm).toString() };
    const introspectEnv = { BENCH_BASIC: server.auth, BENCH_BODY: new URLSearchParams({ token: introspected }).toString() };
    log(`${server.name}: grants`);
    if (WARMUP > 0) wrk(server.token, grantEnv, WARMUP, pid);
    const grants = wrk(server.token, grantEnv, SECONDS, pid);
    log(`${server.name}: ${grants.rps.toFixed(0)} grants/s; introspection`);
    if (WARMUP > 0) wrk(server.introspect, introspectEnv, WARMUP, pid);
    const introspections = wrk(server.introspect, introspectEnv, SECONDS, pid);
    log(`${server.name}: ${introspections.rps.toFixed(0)} introspections/s`);
    await active();
    return { grants, introspections, rssMiB: peakRssMiB(pid) };
  } finally {
    await stop(server.child);
    server.cleanup();
  }
}

async function main() {
  const rounds = [];
  for (let run = 1; run <= RUNS; run++) {
    log(`round ${run}/${RUNS}: openssl speed -elapsed ecdsap256`);
    const ssl = opensslSpeed();
    log(`ES256 ${ssl.sign.toFixed(0)} sign/s, ${ssl.verify.toFixed(0)} verify/s`);
    const order = run % 2 === 1 ? [['custos', startCustos], ['peer', startPeer]]
      : [['peer', startPeer], ['custos', startCustos]];
    const round = { ssl };
    for (const [key, start] of order) round[key] = await measure(start);
    rounds.push(round);
  }

  const col = (f) => rounds.map(f);
  const fmt0 = (x) => x.toFixed(0);
  const fmt2 = (x) => x.toFixed(2);
  const pct = (x) => `${(100 * x).toFixed(0)}%`;
  // One table row: the median of f over rounds, then every round.
  const row = (name, f, show = fmt0, unit = '') =>
    console.log(`| ${name} | ${show(median(col(f)))}${unit} | ${col(f).map(show).join(', ')} |`);
  // One row for a pair of values per round (grants / introspection).
  const pair = (name, f, g, show) =>
    console.log(`| ${name} | ${show(median(col(f)))} / ${show(median(col(g)))} | ` +
      `${rounds.map((r) => `${show(f(r))} / ${show(g(r))}`).join('; ')} |`);
  const version = (cmd, argv) => {
    try {
      return execFileSync(cmd, argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).split('\n')[0];
    } catch (e) {
      return String(e.stdout ?? '').split('\n')[0];  // `wrk -v` prints its version and exits 1
    }
  };
  const peerVersion = JSON.parse(readFileSync(join(ROOT, 'node_modules/oidc-provider/package.json'), 'utf8')).version;
  console.log(`Machine: ${cpus()[0].model}, ${cpus().length} cores; ${new Date().toISOString()}`);
  console.log(`Custos ${BIN}; oidc-provider ${peerVersion} on Node ${process.version}; ` +
    `${version('openssl', ['version'])}; ${version('wrk', ['-v']).replace(/ Copyright.*/, '')}`);
  console.log(`Rounds: ${RUNS} x ${SECONDS} s per load (after ${WARMUP} s warm-up); server on core ${SERVER_CORE}, ` +
    `wrk -t1 -c${CONNECTIONS} on core ${WRK_CORE}; Custos worker_threads=${WORKERS}\n`);
  console.log('| measure | median of rounds | all rounds |');
  console.log('|---|---|---|');
  row('openssl ES256 sign, one core', (r) => r.ssl.sign, fmt0, ' /s');
  row('openssl ES256 verify, one core', (r) => r.ssl.verify, fmt0, ' /s');
  for (const [key, name] of [['custos', 'Custos'], ['peer', 'oidc-provider']]) {
    row(`${name} client-credentials grants`, (r) => r[key].grants.rps, fmt0, ' /s');
    row(`${name} introspections`, (r) => r[key].introspections.rps, fmt0, ' /s');
    console.log(`| ${name} p50 / p99 latency, grants; introspection | ` +
      `${rounds.map((r) => `${r[key].grants.p50} / ${r[key].grants.p99}; ${r[key].introspections.p50} / ${r[key].introspections.p99}`).join(' — ')} | |`);
    pair(`${name} CPU used, grants / introspection (cores)`, (r) => r[key].grants.serverCpu,
      (r) => r[key].introspections.serverCpu, fmt2);
    pair(`${name} CPU per grant / per introspection (µs)`,
      (r) => 1e6 * r[key].grants.serverCpu / r[key].grants.rps,
      (r) => 1e6 * r[key].introspections.serverCpu / r[key].introspections.rps, fmt0);
    row(`${name} peak RSS (VmHWM)`, (r) => r[key].rssMiB, (x) => x.toFixed(1), ' MiB');
  }
  for (const [key, name] of [['custos', 'Custos'], ['peer', 'oidc-provider']]) {
    pair(`server core busy (any process) under ${name}, grants / introspection`,
      (r) => r[key].grants.serverCoreBusy, (r) => r[key].introspections.serverCoreBusy, pct);
    pair(`wrk's own CPU against ${name}, grants / introspection (cores)`,
      (r) => r[key].grants.wrkCpu, (r) => r[key].introspections.wrkCpu, fmt2);
  }
  console.log('');
  console.log('| ratio (median of per-round ratios) | median | all rounds |');
  console.log('|---|---|---|');
  row('**grants, Custos / oidc-provider** (goal ≥ 8)', (r) => r.custos.grants.rps / r.peer.grants.rps, fmt2, '×');
  row('**grants, Custos / openssl ES256 sign** (goal ≥ 50%)', (r) => r.custos.grants.rps / r.ssl.sign, pct);
  row('introspections, Custos / oidc-provider', (r) => r.custos.introspections.rps / r.peer.introspections.rps, fmt2, '×');
  row('introspections, Custos / openssl ES256 verify', (r) => r.custos.introspections.rps / r.ssl.verify, pct);
  row('grants, oidc-provider / openssl ES256 sign', (r) => r.peer.grants.rps / r.ssl.sign, pct);
  console.log(`\nJSON ${JSON.stringify(rounds)}`);
}

main().catch((e) => { console.error(e); process.exit(1); });
