// Benchmarks of the foundation, recorded in docs/benchmarks.md:
//   1. raw Argon2id at the configured parameters (Google Benchmark, bench/argon2_bench.cc);
//   2. sign-ins per second (wrk, bench/signin.lua) against `custos serve` pinned to one core;
//   3. GET /api/v1/users/{id} per second (wrk, bench/get_user.lua), same server.
// Each is run RUNS times; medians are printed as a Markdown table with the sign-in/Argon2id
// ratio. The server gets core SERVER_CORE, wrk gets WRK_CORE (taskset), so "per core" means
// per core. Usage: node bench/run.mjs [--runs N] [--seconds S]
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir, cpus } from 'node:os';
import { join } from 'node:path';

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : def;
};
const RUNS = opt('--runs', 3);
const SECONDS = opt('--seconds', 10);
const ROOT = new URL('..', import.meta.url).pathname;
const BIN = process.env.CUSTOS_BIN ?? join(ROOT, 'build/src/cli/custos');
const ARGON = process.env.ARGON2_BENCH ?? join(ROOT, 'build/bench/argon2_bench');
const SERVER_CORE = process.env.SERVER_CORE ?? '1';
const WRK_CORE = process.env.WRK_CORE ?? '0';
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const log = (...m) => console.error('==>', ...m);

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

async function startServer(dataDir) {
  execFileSync(BIN, ['admin', 'create-tenant', 'bench', '--data-dir', dataDir]);
  const token = execFileSync(BIN, ['admin', 'create-api-token', '--tenant', 'bench',
    '--data-dir', dataDir], { encoding: 'utf8' }).trim();
  const child = spawn('taskset', ['-c', SERVER_CORE, BIN, 'serve', '--data-dir', dataDir,
    '--port', '0', '--set', 'server.worker_threads=1', '--set', 'server.network_threads=1',
    '--set', 'log.level=warn',
    // wrk sends every sign-in from one address, which the per-address limit would refuse.
    '--set', 'server.authn_rate_per_ip=0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await new Promise((resolve, reject) => {
    let text = '';
    child.stdout.on('data', (d) => {
      text += d;
      const m = text.match(/custos listening on (\S+)/);
      if (m) resolve(m[1]);
    });
    child.on('exit', (code) => reject(new Error(`custos serve exited with ${code}`)));
  });
  return { child, url, token };
}

function wrk(script, url, connections, env) {
  const out = execFileSync('taskset', ['-c', WRK_CORE, 'wrk', '-t1', `-c${connections}`,
    `-d${SECONDS}s`, '--latency', '-s', join(ROOT, 'bench', script), url],
    { encoding: 'utf8', env: { ...process.env, ...env } });
  const rps = Number(out.match(/Requests\/sec:\s+([\d.]+)/)[1]);
  const non2xx = Number(out.match(/Non-2xx or 3xx responses: (\d+)/)?.[1] ?? 0);
  const p50 = out.match(/50%\s+(\S+)/)?.[1];
  if (non2xx > 0) throw new Error(`${script}: ${non2xx} failed responses`);
  return { rps, p50 };
}

async function main() {
  const rows = { hash: [], verify: [], signin: [], getUser: [], signinP50: [], getUserP50: [] };
  for (let run = 1; run <= RUNS; run++) {
    log(`run ${run}/${RUNS}: Argon2id`);
    const a = argon2();
    rows.hash.push(a.hash);
    rows.verify.push(a.verify);
    const dataDir = mkdtempSync(join(tmpdir(), 'custos-bench-'));
    const server = await startServer(dataDir);
    try {
      const user = 'bench@bench.example', password = 'bench-password-for-wrk';
      const created = await fetch(`${server.url}/t/bench/api/v1/users?activate=true`, {
        method: 'POST',
        headers: { Authorization: `SSWS ${server.token}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({ profile: { login: user, email: user, firstName: 'B', lastName: 'M' },
          credentials: { password: { value: password } } }),
      }).then((r) => r.json());
      log(`run ${run}/${RUNS}: sign-in`);
      const s = wrk('signin.lua', `${server.url}/t/bench/api/v1/authn`, 2,
        { BENCH_USER: user, BENCH_PASSWORD: password });
      rows.signin.push(s.rps);
      rows.signinP50.push(s.p50);
      log(`run ${run}/${RUNS}: GET /api/v1/users/{id}`);
      const g = wrk('get_user.lua', `${server.url}/t/bench/api/v1/users/${created.id}`, 16,
        { BENCH_TOKEN: server.token });
      rows.getUser.push(g.rps);
      rows.getUserP50.push(g.p50);
    } finally {
      server.child.kill('SIGTERM');
      await new Promise((r) => server.child.on('exit', r));
      rmSync(dataDir, { recursive: true, force: true });
    }
  }
  const m = Object.fromEntries(Object.entries(rows).map(([k, v]) =>
    [k, typeof v[0] === 'number' ? median(v) : v[Math.floor(v.length / 2)]]));
  console.log(`Machine: ${cpus()[0].model}, ${cpus().length} cores; ${new Date().toISOString()}`);
  console.log(`Runs: ${RUNS} x ${SECONDS} s; server on core ${SERVER_CORE}, wrk on core ${WRK_CORE}\n`);
  console.log('| measure | median of runs | all runs |');
  console.log('|---|---|---|');
  const fmt = (x) => x.toFixed(1);
  console.log(`| Argon2id hash, per core | ${fmt(m.hash)} /s | ${rows.hash.map(fmt).join(', ')} |`);
  console.log(`| Argon2id verify, per core | ${fmt(m.verify)} /s | ${rows.verify.map(fmt).join(', ')} |`);
  console.log(`| sign-in (POST /authn), per core | ${fmt(m.signin)} /s (p50 ${m.signinP50}) | ${rows.signin.map(fmt).join(', ')} |`);
  console.log(`| GET /users/{id}, one core | ${fmt(m.getUser)} /s (p50 ${m.getUserP50}) | ${rows.getUser.map(fmt).join(', ')} |`);
  const ratios = rows.signin.map((s, i) => s / rows.verify[i]);
  console.log(`\nSign-in / raw Argon2id verify: ${(100 * median(ratios)).toFixed(1)}% (median of per-run ratios: ${ratios.map((r) => (100 * r).toFixed(1) + '%').join(', ')})`);
}

main().catch((e) => { console.error(e); process.exit(1); });
