// Runs bench/log_bench RUNS times for appends and for proofs and prints the medians as the
// Markdown rows of docs/benchmarks.md. Usage:
//   node bench/log_run.mjs [--runs 3] [--events 500000] [--batch 1000] [--size 10000000] [--samples 20000]
// LOG_BENCH overrides the binary (default build/bench/log_bench; build with
// -DCUSTOS_BUILD_BENCH=ON).
import { execFileSync } from 'node:child_process';
import { cpus } from 'node:os';
import { join } from 'node:path';

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : def;
};
const RUNS = opt('--runs', 3);
const ROOT = new URL('..', import.meta.url).pathname;
const BIN = process.env.LOG_BENCH ?? join(ROOT, 'build/bench/log_bench');
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const run = (argv) => {
  console.error('==>', BIN, argv.join(' '));
  const out = execFileSync(BIN, argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  const result = JSON.parse(out.trim().split('\n').pop());
  console.error(JSON.stringify(result));
  return result;
};

const appends = [];
for (let i = 0; i < RUNS; i++) {
  appends.push(run(['append', '--events', String(opt('--events', 500000)), '--batch',
    String(opt('--batch', 1000))]));
}
const proofs = [];
for (let i = 0; i < RUNS; i++) {
  proofs.push(run(['proofs', '--size', String(opt('--size', 10000000)), '--samples',
    String(opt('--samples', 20000))]));
}
const m = (list, f) => median(list.map(f));
console.log(`machine: ${cpus()[0].model}, ${cpus().length} cores; ${new Date().toISOString().slice(0, 10)}; ` +
  `medians of ${RUNS} runs`);
console.log('| measure | median |');
console.log('|---|---|');
console.log(`| plain SQLite inserts (same rows, same batches) | ${m(appends, (r) => r.plain_insert_per_s).toFixed(0)} events/s |`);
console.log(`| whole path: outbox -> sequencer -> tree -> signed checkpoint | ${m(appends, (r) => r.whole_path_per_s).toFixed(0)} events/s |`);
console.log(`| ratio whole path / plain inserts | ${m(appends, (r) => r.ratio).toFixed(2)} |`);
console.log(`| sequencer alone over a full outbox | ${m(appends, (r) => r.sequencer_alone_per_s).toFixed(0)} events/s |`);
console.log(`| inclusion proof, ${proofs[0].size} entries, p50 / p99 | ${m(proofs, (r) => r.inclusion_us.p50).toFixed(1)} / ${m(proofs, (r) => r.inclusion_us.p99).toFixed(1)} µs |`);
console.log(`| consistency proof, ${proofs[0].size} entries, p50 / p99 | ${m(proofs, (r) => r.consistency_us.p50).toFixed(1)} / ${m(proofs, (r) => r.consistency_us.p99).toFixed(1)} µs |`);
