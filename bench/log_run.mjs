// Runs bench/log_bench RUNS times for appends and for proofs and prints the medians as the
// Markdown rows of docs/benchmarks.md. Usage:
//   node bench/log_run.mjs [--runs 3] [--events 500000] [--batch 1000] [--size 10000000] [--samples 20000]
//                          [--store sqlite|postgres|sqlite,postgres] [--pg URL] [--durable]
// --store: the embedded SQLite store (default), or PostgreSQL databases that log_bench creates
// for each run on the server whose admin URL is --pg or $CUSTOS_TEST_POSTGRES; both,
// comma-separated: each round runs every store in turn (the order alternates between rounds) and
// the table puts them side by side. --durable first turns fsync, synchronous_commit and
// full_page_writes on for the whole PostgreSQL server (for scripts/with-postgres.sh's throwaway
// server, which runs with them off): SQLite fsyncs every commit here, so only a durable
// PostgreSQL compares.
// LOG_BENCH overrides the binary (default build/bench/log_bench; build with
// -DCUSTOS_BUILD_BENCH=ON).
import { execFileSync } from 'node:child_process';
import { cpus } from 'node:os';
import { join } from 'node:path';

const args = process.argv.slice(2);
const optStr = (name, def) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : def;
};
const opt = (name, def) => Number(optStr(name, def));
const RUNS = opt('--runs', 3);
const STORES = optStr('--store', 'sqlite').split(',');
const PG = optStr('--pg', process.env.CUSTOS_TEST_POSTGRES ?? '');
const ROOT = new URL('..', import.meta.url).pathname;
const BIN = process.env.LOG_BENCH ?? join(ROOT, 'build/bench/log_bench');
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const kStoreNames = { sqlite: 'SQLite', postgres: 'PostgreSQL' };

for (const s of STORES) {
  if (!kStoreNames[s]) throw new Error(`--store: unknown store ${s}`);
}
if (STORES.includes('postgres') && !PG) {
  throw new Error('--store postgres needs --pg URL or CUSTOS_TEST_POSTGRES (scripts/with-postgres.sh)');
}

const psql = (...sql) => execFileSync('psql', ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1',
  '-d', PG, ...sql.flatMap((s) => ['-c', s])], { encoding: 'utf8' }).trim();
const kPgSettings = ['server_version', 'fsync', 'synchronous_commit', 'full_page_writes',
  'wal_sync_method', 'shared_buffers'];
const pgSettings = () => Object.fromEntries(
  psql(`SELECT concat_ws('|', ${kPgSettings.map((s) => `current_setting('${s}')`).join(', ')})`)
    .split('|').map((v, i) => [kPgSettings[i], v]));

if (STORES.includes('postgres') && args.includes('--durable')) {
  // One -c each: ALTER SYSTEM cannot run in a transaction block. The reload is asynchronous.
  psql('ALTER SYSTEM SET fsync = on', 'ALTER SYSTEM SET synchronous_commit = on',
    'ALTER SYSTEM SET full_page_writes = on', 'SELECT pg_reload_conf()');
  for (let i = 0; pgSettings().fsync !== 'on'; i++) {
    if (i === 50) throw new Error('the PostgreSQL server did not take fsync = on');
    execFileSync('sleep', ['0.1']);
  }
}

const run = (store, argv) => {
  const full = [...argv, ...(store === 'postgres' ? ['--pg', PG] : [])];
  console.error('==>', BIN, full.join(' ').replace(PG, '$PG'));
  const out = execFileSync(BIN, full, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  const result = JSON.parse(out.trim().split('\n').filter((l) => l.startsWith('{')).pop());
  console.error(JSON.stringify(result));
  return result;
};

// Every store in turn per round, the order alternating, so that a slow spell of the shared
// machine does not fall on one store only.
const rounds = (argv) => {
  const results = Object.fromEntries(STORES.map((s) => [s, []]));
  for (let i = 0; i < RUNS; i++) {
    for (const s of i % 2 ? [...STORES].reverse() : STORES) results[s].push(run(s, argv));
  }
  return results;
};
const appends = rounds(['append', '--events', String(opt('--events', 500000)), '--batch',
  String(opt('--batch', 1000))]);
const proofs = rounds(['proofs', '--size', String(opt('--size', 10000000)), '--samples',
  String(opt('--samples', 20000))]);

const size = proofs[STORES[0]][0].size;
const rows = [
  ['plain inserts (same rows, same batches)', (r) => r.plain_insert_per_s, 0, 'events/s', appends],
  ['whole path: outbox -> sequencer -> tree -> signed checkpoint', (r) => r.whole_path_per_s, 0, 'events/s', appends],
  ['ratio whole path / plain inserts', (r) => r.ratio, 2, '', appends],
  ['sequencer alone over a full outbox', (r) => r.sequencer_alone_per_s, 0, 'events/s', appends],
  [`inclusion proof, ${size} entries, p50`, (r) => r.inclusion_us.p50, 1, 'µs', proofs],
  [`inclusion proof, ${size} entries, p99`, (r) => r.inclusion_us.p99, 1, 'µs', proofs],
  [`consistency proof, ${size} entries, p50`, (r) => r.consistency_us.p50, 1, 'µs', proofs],
  [`consistency proof, ${size} entries, p99`, (r) => r.consistency_us.p99, 1, 'µs', proofs],
];
console.log(`machine: ${cpus()[0].model}, ${cpus().length} cores; ${new Date().toISOString()}; ` +
  `medians of ${RUNS} runs`);
if (STORES.includes('postgres')) {
  const pg = pgSettings();
  console.log(`PostgreSQL ${pg.server_version}: ${kPgSettings.slice(1).map((k) => `${k}=${pg[k]}`).join(', ')}` +
    (pg.fsync === 'on' && pg.synchronous_commit === 'on' ? '' : '  ** NOT DURABLE (--durable) **'));
}
const cell = (list, f, digits, unit) => {
  const xs = list.map(f);
  return `${`${median(xs).toFixed(digits)} ${unit}`.trim()} (${xs.map((x) => x.toFixed(digits)).join(', ')})`;
};
console.log(`| measure | ${STORES.map((s) => kStoreNames[s]).join(' | ')} |` +
  (STORES.length === 2 ? ` ${kStoreNames[STORES[1]]} / ${kStoreNames[STORES[0]]} |` : ''));
console.log(`|---|${STORES.map(() => '---|').join('')}${STORES.length === 2 ? '---|' : ''}`);
for (const [label, f, digits, unit, results] of rows) {
  let line = `| ${label} | ${STORES.map((s) => cell(results[s], f, digits, unit)).join(' | ')} |`;
  if (STORES.length === 2) {
    const [a, b] = STORES.map((s) => results[s].map(f));
    line += ` ${median(a.map((x, i) => b[i] / x)).toFixed(2)} |`;
  }
  console.log(line);
}
