// The System Log explorer in node, against a fake server holding the log the C++ server wrote
// (../verify/testdata/custos) and the real Api and verifier.
import { readFileSync } from 'node:fs';
import type { TemplateResult } from 'lit-html';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Activity } from '../activity';
import { fromBase64 } from '../verify/bytes';
import { entryText } from '../verify/log-verifier';
import { FakeFetch, fakeCtx, json } from '../test-support/fake-console';
import { type LogEvent, LogView, eventTexts } from './log';

const fixture = (name: string) => readFileSync(new URL(`../verify/testdata/custos/${name}`, import.meta.url), 'utf8');
const proofs = fixture('proofs.jsonl')
  .trim()
  .split('\n')
  .map((l) => JSON.parse(l) as { leafHash: string });

/** The fake server: the log's events (what the query API serves may be edited), proofs, tiles. */
class LogServer extends FakeFetch {
  served: LogEvent[] = JSON.parse(fixture('events.json')) as LogEvent[];
  /** Proof requests for these indexes wait until released. */
  held = new Map<number, Promise<void>>();

  constructor() {
    super();
    this.routes.push((path) => {
      const url = new URL(path, 'http://console.test');
      const p = url.pathname;
      if (p === '/t/acme/api/v1/logs') return json(this.served);
      if (p === '/t/acme/log/checkpoint') return new Response(fixture('checkpoint.txt'));
      if (p === '/t/acme/api/v1/log/keys') return json([{ vkey: fixture('vkey.txt').trim() }]);
      if (p === '/t/acme/log/tile/0/000.p/16') {
        const tile = new Uint8Array(32 * 16);
        proofs.forEach((q, i) => tile.set(fromBase64(q.leafHash), i * 32));
        return new Response(tile);
      }
      if (p === '/t/acme/log/proof/inclusion') {
        const index = Number(url.searchParams.get('index'));
        return (this.held.get(index) ?? Promise.resolve()).then(() => json(proofs[index]));
      }
      return null;
    });
  }

  hold(index: number): () => void {
    let release = () => {};
    this.held.set(index, new Promise<void>((r) => (release = r)));
    return () => {
      this.held.delete(index);
      release();
    };
  }
}

let server: LogServer;
let tokens = 0;

beforeEach(() => {
  server = new LogServer();
  vi.stubGlobal('fetch', server.fetch);
  vi.stubGlobal('location', { host: '127.0.0.1:18741', pathname: '/console/', hash: '#/log' });
});
afterEach(() => {
  vi.useRealTimers();
  vi.unstubAllGlobals();
});

function open(activity?: Activity): { view: LogView; private: { load(): Promise<void>; setTail(on: boolean): void } } {
  // A new session token each time: a fresh verifier (and trust store) per test.
  const view = new LogView(fakeCtx('acme', `token-${++tokens}`, activity));
  return { view, private: view as unknown as { load(): Promise<void>; setTail(on: boolean): void } };
}

const uuid13 = () => server.served[13].uuid;

describe('verification marks', () => {
  it('never shows an earlier verdict on an edited event with the same uuid', async () => {
    const { view, private: p } = open();
    await vi.waitFor(() => expect(view.markFor(uuid13())?.state).toBe('verified'));

    const edited = structuredClone(server.served[13]);
    edited.displayMessage = 'Create a user (edited)';
    server.served[13] = edited;
    const release = server.hold(13);
    await p.load();
    // Its own check is still running: whatever the uuid had before does not count.
    expect(view.markFor(uuid13())).toEqual({ state: 'pending' });
    release();
    await vi.waitFor(() =>
      expect(view.markFor(uuid13())).toMatchObject({ state: 'failed', reason: 'event does not match the log at index 13' }),
    );
    view.dispose();
  });

  it('takes the log it expects from the page and the tenant, not from the session answer', async () => {
    vi.stubGlobal('location', { host: 'id.example.com', pathname: '/console/', hash: '#/log' });
    const { view } = open();
    await vi.waitFor(() => expect(view.markFor(uuid13())?.state).toBe('failed'));
    expect(view.markFor(uuid13())?.reason).toBe(
      'checkpoint is of another log (127.0.0.1:18741/t/acme, expected id.example.com/t/acme)',
    );
    view.dispose();
  });
});

describe('events that stay out of the log', () => {
  it('fail visibly instead of waiting forever', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] });
    const published = Date.parse(server.served[0].published!);
    vi.setSystemTime(published + 60 * 60_000);
    // Someone with the database removed the event's index: it would show "Not yet in the log".
    server.served[0].custos = { log: { origin: '127.0.0.1:18741/t/acme', index: null } };
    const uuid = server.served[0].uuid;
    const { view } = open();
    await vi.waitFor(() => expect(view.markFor(uuid)?.state).toBe('unsequenced'));
    await vi.advanceTimersByTimeAsync(20_000);
    expect(view.markFor(uuid)?.state).toBe('unsequenced');
    for (let i = 0; i < 20 && view.markFor(uuid)?.state !== 'failed'; i++) await vi.advanceTimersByTimeAsync(1_500);
    expect(view.markFor(uuid)).toMatchObject({
      state: 'failed',
      reason: 'not in the log 60 minutes after it was published',
    });
    expect(server.requests((p) => p.includes('/api/v1/logs?')).slice(1).every((r) => r.background)).toBe(true);
    view.dispose();
  });
});

/** The text of a template, markup included (no DOM in node). */
function flatten(v: unknown): string {
  if (Array.isArray(v)) return v.map(flatten).join('');
  if (v && typeof v === 'object' && 'strings' in v && 'values' in v) {
    const t = v as TemplateResult;
    return t.strings.reduce((out, s, i) => out + s + (i < t.values.length ? flatten(t.values[i]) : ''), '');
  }
  return typeof v === 'string' || typeof v === 'number' ? String(v) : '';
}

function section(html: string, label: string): string {
  const start = html.indexOf(`aria-label="${label}">`);
  expect(start, label).toBeGreaterThan(0);
  const from = start + label.length + 14;
  return html.slice(from, html.indexOf('</pre>', from));
}

describe('event detail', () => {
  it('shows the canonical text hashed, and custos apart as not covered by the log', () => {
    const e = JSON.parse(fixture('events.json'))[13] as LogEvent;
    const out = flatten(eventTexts(e));
    expect(out).toContain('The text the browser hashed');
    const hashed = section(out, 'Canonical event text (hashed)');
    expect(hashed).toBe(entryText(e));
    expect(hashed).not.toContain('custos');
    expect(out).toContain('Not covered by the log: <code>custos</code>');
    expect(JSON.parse(section(out, 'custos (not covered by the log)'))).toEqual(e.custos);
  });

  it('says so when an event cannot be hashed', () => {
    const e = { uuid: 'x', displayMessage: 'lone \ud800 surrogate', custos: { log: { index: 1 } } } as LogEvent;
    const out = flatten(eventTexts(e));
    expect(out).toContain('cannot be put in canonical form');
    expect(out).not.toContain('Canonical event text (hashed)');
  });
});

describe('live tail', () => {
  it('polls in the background, and not at all once the admin is idle', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] });
    server.served = [];
    const activity = new Activity(10 * 60_000);
    const { view, private: p } = open(activity);
    await vi.waitFor(() => expect(view.busy()).toBe(false));
    const polls = () => server.requests((path) => path.startsWith('/t/acme/api/v1/logs?'));
    expect(polls()).toEqual([expect.objectContaining({ background: false })]);

    p.setTail(true);
    await vi.advanceTimersByTimeAsync(0);
    expect(polls()).toHaveLength(2);
    expect(polls()[1].background).toBe(false); // the admin ticked the box
    await vi.advanceTimersByTimeAsync(2_000);
    expect(polls()).toHaveLength(3);
    expect(polls()[2].background).toBe(true);

    await vi.advanceTimersByTimeAsync(10 * 60_000);
    expect(activity.idle).toBe(true);
    const whenIdle = polls().length;
    await vi.advanceTimersByTimeAsync(5 * 60_000);
    expect(polls()).toHaveLength(whenIdle);
    expect(polls().slice(2).every((r) => r.background)).toBe(true);

    activity.input();
    await vi.advanceTimersByTimeAsync(2_000);
    expect(polls().length).toBeGreaterThan(whenIdle);
    view.dispose();
    activity.dispose();
  });
});
