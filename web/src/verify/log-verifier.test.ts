// The whole browser-side check against a log written and signed by the C++ server
// (testdata/custos, see its README), with a fake server that can be made to lie.
import { readFileSync } from 'node:fs';
import { beforeEach, describe, expect, it } from 'vitest';
import { fromBase64, toBase64, toHex } from './bytes';
import {
  type ConsistencyProof,
  type InclusionProof,
  type LogSource,
  LogVerifier,
  entryBytes,
  entryText,
  formatAge,
  leafTilePath,
  markText,
} from './log-verifier';
import { MemoryTrustStore } from './trust';

const fixture = (name: string) => readFileSync(new URL(`./testdata/custos/${name}`, import.meta.url), 'utf8');
const ORIGIN = '127.0.0.1:18741/t/acme';
const VKEY = fixture('vkey.txt').trim();
// Another server's key: the C2SP signed-note example's.
const OTHER_VKEY = 'example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k';

type Event = Record<string, unknown> & { uuid: string; custos: { log: { origin: string; index: number | null } } };

class FakeServer implements LogSource {
  note = fixture('checkpoint.txt');
  vkeys = [VKEY];
  proofs: InclusionProof[] = fixture('proofs.jsonl')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as InclusionProof);
  consistencyProof: ConsistencyProof = JSON.parse(fixture('consistency.json')) as ConsistencyProof;
  inclusionCalls = 0;

  checkpoint() {
    return Promise.resolve(this.note);
  }
  keys() {
    return Promise.resolve(this.vkeys);
  }
  inclusion(index: number, size: number) {
    this.inclusionCalls++;
    const p = this.proofs[index];
    if (!p || size !== 16) return Promise.reject(new Error('404'));
    return Promise.resolve(structuredClone(p));
  }
  tiles = true;
  leafHashAt(index: number, size: number) {
    if (!this.tiles || size !== 16) return Promise.reject(new Error('404'));
    return Promise.resolve(fromBase64(JSON.parse(fixture('proofs.jsonl').trim().split('\n')[index]).leafHash as string));
  }
  consistency(from: number, to: number) {
    if (from !== this.consistencyProof.from || to !== this.consistencyProof.to) return Promise.reject(new Error('400'));
    return Promise.resolve(structuredClone(this.consistencyProof));
  }
}

let events: Event[];
let server: FakeServer;
let trust: MemoryTrustStore;
let verifier: LogVerifier;

beforeEach(() => {
  events = JSON.parse(fixture('events.json')) as Event[];
  server = new FakeServer();
  trust = new MemoryTrustStore();
  verifier = new LogVerifier(server, trust, { expectedOrigin: ORIGIN });
});

describe('entries', () => {
  it('computes the leaf hash the server has for every event', async () => {
    for (const event of events) {
      const proof = server.proofs[event.custos.log.index!];
      const { leafHash } = await import('./merkle');
      expect(toBase64(await leafHash(entryBytes(event)))).toBe(proof.leafHash);
    }
  });
});

describe('verifying events', () => {
  it('verifies every event of the server-written log', async () => {
    expect(events).toHaveLength(16);
    for (const event of events) {
      const mark = await verifier.verifyEvent(event);
      expect(mark, event.uuid).toMatchObject({ state: 'verified', index: event.custos.log.index, treeSize: 16 });
      expect(markText(mark)).toBe('Verified');
    }
    expect(verifier.status).toMatchObject({ state: 'ok', firstUse: true, signedBy: ['127.0.0.1:18741+0b97cedc'] });
    expect(trust.pinnedKeys().map((k) => k.label)).toEqual(['127.0.0.1:18741+0b97cedc']);
    expect(trust.checkpoint(ORIGIN)).toMatchObject({ size: 16, root: 'b6en7GbtmpyeL61UXUMoWMx+AFWgLJgvrb7rbnLPaNo=' });
  });

  it('fails an event whose shown content differs from the log by one character', async () => {
    const zoe = events[13];
    const target = (zoe.target as Array<{ displayName: string }>)[0];
    expect(target.displayName).toContain('Zoë');
    target.displayName = target.displayName.replace('Zoë', 'Zoe');
    const mark = await verifier.verifyEvent(zoe);
    expect(mark).toMatchObject({ state: 'failed', reason: 'event does not match the log at index 13' });
    expect(markText(mark)).toBe('Verification failed: event does not match the log at index 13');
  });

  it('fails an event that claims another index', async () => {
    events[2].custos.log.index = 3;
    expect(await verifier.verifyEvent(events[2])).toMatchObject({ state: 'failed' });
  });

  it("tells an altered event from a bad proof by the log's own tile, even when the server lies", async () => {
    const zoe = events[13];
    zoe.displayMessage = 'Create a user';
    server.proofs[13].leafHash = toBase64(await (await import('./merkle')).leafHash(entryBytes(zoe)));
    expect(await verifier.verifyEvent(zoe)).toMatchObject({
      state: 'failed',
      reason: 'event does not match the log at index 13',
    });
  });

  it('fails without a diagnosis when neither the tile nor the server says more', async () => {
    server.tiles = false;
    const zoe = events[13];
    zoe.displayMessage = 'Create a user';
    server.proofs[13].leafHash = toBase64(await (await import('./merkle')).leafHash(entryBytes(zoe)));
    expect(await verifier.verifyEvent(zoe)).toMatchObject({
      state: 'failed',
      reason: 'inclusion proof does not match the signed checkpoint',
    });
  });

  it('does not blame the event when the proof is bad, whatever the tile says', async () => {
    const h = fromBase64(server.proofs[13].hashes[0]);
    h[3] ^= 4;
    server.proofs[13].hashes[0] = toBase64(h);
    expect((await verifier.verifyEvent(events[13])).reason).toBe('inclusion proof does not match the signed checkpoint');
  });

  it('fails when a proof hash is altered', async () => {
    const h = fromBase64(server.proofs[5].hashes[1]);
    h[0] ^= 0x80;
    server.proofs[5].hashes[1] = toBase64(h);
    expect(await verifier.verifyEvent(events[5])).toMatchObject({
      state: 'failed',
      reason: 'inclusion proof does not match the signed checkpoint',
    });
  });

  it('fails a proof for another position', async () => {
    server.proofs[4].index = 5;
    expect(await verifier.verifyEvent(events[4])).toMatchObject({
      state: 'failed',
      reason: 'the server sent a proof for another position',
    });
  });

  it('fails a truncated proof', async () => {
    server.proofs[4].hashes.pop();
    expect((await verifier.verifyEvent(events[4])).reason).toMatch(/^malformed inclusion proof/);
  });

  it('leaves an event without a log index unsequenced', async () => {
    events[0].custos.log.index = null;
    expect(await verifier.verifyEvent(events[0])).toEqual({ state: 'unsequenced' });
  });

  it('waits for a checkpoint that covers a newer event', async () => {
    const late = structuredClone(events[0]);
    late.custos.log.index = 16;
    const mark = await verifier.verifyEvent(late);
    expect(mark.state).toBe('pending');
  });

  it('fails an event of another log', async () => {
    events[1].custos.log.origin = '127.0.0.1:18741/t/other';
    expect((await verifier.verifyEvent(events[1])).reason).toBe('the event names another log (127.0.0.1:18741/t/other)');
  });

  it('fetches each proof once', async () => {
    await verifier.verifyEvent(events[7]);
    await verifier.verifyEvent(events[7]);
    expect(server.inclusionCalls).toBe(1);
  });
});

describe('tile paths', () => {
  it('follows C2SP tlog-tiles', () => {
    expect(leafTilePath(0, 16)).toBe('tile/0/000.p/16');
    expect(leafTilePath(300, 1000)).toBe('tile/0/001');
    expect(leafTilePath(300, 400)).toBe('tile/0/001.p/144');
    expect(leafTilePath(1234067 * 256 + 5, 1234068 * 256)).toBe('tile/0/x001/x234/067');
  });
});

describe('checkpoints', () => {
  it('fails every event when the checkpoint signature is invalid', async () => {
    server.note = server.note.replace('C5fO3GWi', 'C5fO3GWj');
    const mark = await verifier.verifyEvent(events[0]);
    expect(mark.state).toBe('failed');
    expect(mark.reason).toMatch(/^checkpoint signature invalid/);
  });

  it('fails a checkpoint whose signed size was changed', async () => {
    server.note = server.note.replace('\n16\n', '\n15\n');
    expect((await verifier.verifyEvent(events[0])).reason).toMatch(/^checkpoint signature invalid/);
  });

  it('fails a checkpoint of another origin', async () => {
    verifier = new LogVerifier(server, trust, { expectedOrigin: '127.0.0.1:18741/t/globex' });
    expect((await verifier.verifyEvent(events[0])).reason).toBe(
      'checkpoint is of another log (127.0.0.1:18741/t/acme, expected 127.0.0.1:18741/t/globex)',
    );
  });

  it('does not take a new server key without the admin, then takes it when accepted', async () => {
    trust.setPinnedKeys([{ vkey: OTHER_VKEY, label: 'example.com/foo+530d903a', pinnedAt: 'x', how: 'first-use' }]);
    const st = await verifier.refresh();
    expect(st).toMatchObject({ state: 'failed' });
    if (st.state !== 'failed') return;
    expect(st.reason).toBe('checkpoint is signed by a key this browser has not pinned (127.0.0.1:18741+0b97cedc)');
    expect(st.newKeys?.map((k) => k.vkey)).toEqual([VKEY]);
    expect((await verifier.verifyEvent(events[0])).state).toBe('failed');

    expect(await verifier.acceptKeys(st.newKeys!)).toMatchObject({ state: 'ok', firstUse: false });
    expect((await verifier.verifyEvent(events[0])).state).toBe('verified');
  });

  it('fails when the server does not even publish the signing key', async () => {
    trust.setPinnedKeys([{ vkey: OTHER_VKEY, label: 'example.com/foo+530d903a', pinnedAt: 'x', how: 'first-use' }]);
    server.vkeys = [OTHER_VKEY];
    expect(await verifier.refresh()).toMatchObject({
      state: 'failed',
      reason: 'checkpoint is not signed by a pinned key (signed by 127.0.0.1:18741+0b97cedc)',
    });
  });

  it('checks a newer checkpoint against the one verified before', async () => {
    expect((await verifier.refresh()).state).toBe('ok');
    server.note = fixture('checkpoint2.txt');
    expect(await verifier.refresh()).toMatchObject({ state: 'ok', checkpoint: { size: 18 } });
    expect(trust.checkpoint(ORIGIN)?.size).toBe(18);
  });

  it('fails a newer checkpoint that is not consistent with the one verified before', async () => {
    expect((await verifier.refresh()).state).toBe('ok');
    server.note = fixture('checkpoint2.txt');
    const h = fromBase64(server.consistencyProof.hashes[0]);
    h[31] ^= 1;
    server.consistencyProof.hashes[0] = toBase64(h);
    const st = await verifier.refresh();
    expect(st).toMatchObject({ state: 'failed', inconsistentWith: { origin: ORIGIN, size: 16 } });
    expect(trust.checkpoint(ORIGIN)?.size).toBe(16);
  });

  it('fails a log that shrank or forked', async () => {
    trust.setCheckpoint(ORIGIN, { size: 18, root: 'MideoWbmxTCgf4mT6cvjxzZtBqB2IAQWP+jhVzDy+yQ=', seenAt: 'x' });
    expect((await verifier.refresh()) as { reason: string }).toMatchObject({
      reason: 'the log shrank: checkpoint size 16, but this browser verified size 18 before',
    });
    trust.setCheckpoint(ORIGIN, { size: 16, root: toBase64(new Uint8Array(32)), seenAt: 'x' });
    expect(((await verifier.refresh()) as { reason: string }).reason).toMatch(/^the log forked/);
    expect(await verifier.forgetCheckpoint(ORIGIN)).toMatchObject({ state: 'ok' });
  });

  it('reports a server that cannot be reached', async () => {
    server.checkpoint = () => Promise.reject(new Error('network down'));
    expect((await verifier.verifyEvent(events[0])).reason).toBe('could not fetch the checkpoint (network down)');
  });
});

it('uses the leaf hash of the canonical entry without custos', async () => {
  const { leafHash } = await import('./merkle');
  const a = toHex(await leafHash(entryBytes(events[0])));
  const withoutCustos: Record<string, unknown> = { ...events[0] };
  delete withoutCustos.custos;
  expect(toHex(await leafHash(entryBytes(withoutCustos)))).toBe(a);
});

describe('entry text', () => {
  it('is the canonical text without custos, the bytes that are hashed', () => {
    const zoe = events[13];
    const text = entryText(zoe);
    expect(text).not.toContain('"custos"');
    expect(text).toContain('Zoë');
    expect(text.startsWith('{"actor":{')).toBe(true);
    expect(new TextDecoder().decode(entryBytes(zoe))).toBe(text);
    expect(text).not.toBe(JSON.stringify(zoe));
  });
});

/** A promise that never settles, recording whether its request was aborted. */
function hanging<T>(signal: AbortSignal | undefined, aborted: { value: boolean }): Promise<T> {
  signal?.addEventListener('abort', () => (aborted.value = true));
  return new Promise<T>(() => {});
}

describe('deadlines', () => {
  it('fails an event whose proof never comes, and aborts the request', async () => {
    verifier = new LogVerifier(server, trust, { expectedOrigin: ORIGIN, fetchTimeoutMs: 30 });
    const aborted = { value: false };
    server.inclusion = (_i: number, _s: number, signal?: AbortSignal) => hanging<InclusionProof>(signal, aborted);
    expect(await verifier.verifyEvent(events[3])).toMatchObject({
      state: 'failed',
      reason: 'could not fetch the inclusion proof (no answer within 30 ms)',
    });
    expect(aborted.value).toBe(true);
  });

  it('fails every event when the checkpoint never comes', async () => {
    verifier = new LogVerifier(server, trust, { expectedOrigin: ORIGIN, fetchTimeoutMs: 30 });
    const aborted = { value: false };
    server.checkpoint = (signal?: AbortSignal) => hanging<string>(signal, aborted);
    expect(await verifier.verifyEvent(events[0])).toMatchObject({
      state: 'failed',
      reason: 'could not fetch the checkpoint (no answer within 30 ms)',
    });
    expect(aborted.value).toBe(true);
  });

  it('gives up on a tile that never comes and still fails the edited event', async () => {
    verifier = new LogVerifier(server, trust, { expectedOrigin: ORIGIN, fetchTimeoutMs: 30 });
    server.leafHashAt = () => new Promise<never>(() => {});
    events[13].displayMessage = 'Create a user';
    expect((await verifier.verifyEvent(events[13])).state).toBe('failed');
  });
});

describe('the origin the browser expects', () => {
  const SAME_TENANT_ELSEWHERE = 'id.example.com/t/acme';

  it('fails without an expected origin instead of skipping the check', async () => {
    verifier = new LogVerifier(server, trust, { expectedOrigin: '' });
    expect((await verifier.verifyEvent(events[0])).reason).toBe('the console cannot tell which log to expect');
  });

  it("refuses another tenant's log outright, even when asked to accept it", async () => {
    verifier = new LogVerifier(server, trust, { expectedOrigin: '127.0.0.1:18741/t/globex', tenant: 'globex' });
    const st = await verifier.refresh();
    expect(st).toMatchObject({ state: 'failed', reason: expect.stringMatching(/^checkpoint is of another log/) });
    expect(st.state === 'failed' && st.newOrigin).toBeFalsy();
    expect(await verifier.acceptOrigin(ORIGIN)).toMatchObject({ state: 'failed' });
    expect(trust.acceptedOrigin('127.0.0.1:18741/t/globex')).toBeNull();
    expect((await verifier.verifyEvent(events[0])).state).toBe('failed');
  });

  it('lets the admin accept the same tenant under another address, and remembers it', async () => {
    verifier = new LogVerifier(server, trust, { expectedOrigin: SAME_TENANT_ELSEWHERE, tenant: 'acme' });
    const st = await verifier.refresh();
    expect(st).toMatchObject({
      state: 'failed',
      reason: `checkpoint is of another log (${ORIGIN}, expected ${SAME_TENANT_ELSEWHERE})`,
      newOrigin: ORIGIN,
    });
    expect((await verifier.verifyEvent(events[0])).state).toBe('failed');
    expect(await verifier.acceptOrigin(ORIGIN)).toMatchObject({ state: 'ok' });
    expect(verifier.origin).toBe(ORIGIN);
    expect((await verifier.verifyEvent(events[0])).state).toBe('verified');
    // The remembered checkpoint is kept under the accepted origin, and the next visit needs no question.
    expect(trust.checkpoint(ORIGIN)?.size).toBe(16);
    const next = new LogVerifier(server, trust, { expectedOrigin: SAME_TENANT_ELSEWHERE, tenant: 'acme' });
    expect(await next.refresh()).toMatchObject({ state: 'ok' });
  });

  it('keeps the remembered checkpoint under the expected origin', async () => {
    trust.setCheckpoint(ORIGIN, { size: 18, root: 'MideoWbmxTCgf4mT6cvjxzZtBqB2IAQWP+jhVzDy+yQ=', seenAt: 'x' });
    expect(await verifier.refresh()).toMatchObject({ state: 'failed', inconsistentWith: { origin: ORIGIN, size: 18 } });
  });
});

describe('events that stay out of the log', () => {
  const published = Date.parse(events0Published());
  let now: number;

  function events0Published(): string {
    return (JSON.parse(fixture('events.json')) as Event[])[0].published as string;
  }

  beforeEach(() => {
    now = published + 60 * 60_000;
    verifier = new LogVerifier(server, trust, { expectedOrigin: ORIGIN, now: () => new Date(now) });
  });

  it('fails an old event without a log index after a short grace', async () => {
    events[0].custos.log.index = null;
    expect(await verifier.verifyEvent(events[0])).toEqual({ state: 'unsequenced' });
    now += 29_000;
    expect((await verifier.verifyEvent(events[0])).state).toBe('unsequenced');
    now += 1_000;
    const mark = await verifier.verifyEvent(events[0]);
    expect(mark).toMatchObject({ state: 'failed', reason: 'not in the log 60 minutes after it was published' });
    expect(markText(mark)).toBe('Verification failed: not in the log 60 minutes after it was published');
  });

  it('fails an old event that claims an index no checkpoint covers', async () => {
    events[0].custos.log.index = 1_000_000;
    expect((await verifier.verifyEvent(events[0])).state).toBe('pending');
    now += 30_000;
    expect(await verifier.verifyEvent(events[0])).toMatchObject({
      state: 'failed',
      reason: 'not in a signed checkpoint (index 1000000, checkpoint size 16) 60 minutes after it was published',
    });
  });

  it('waits for a fresh event, then fails it after two minutes whatever it says its time is', async () => {
    const fresh = structuredClone(events[0]);
    fresh.custos.log.index = null;
    fresh.published = new Date(now + 5 * 60_000).toISOString();
    expect((await verifier.verifyEvent(fresh)).state).toBe('unsequenced');
    now += 119_000;
    expect((await verifier.verifyEvent(fresh)).state).toBe('unsequenced');
    now += 1_000;
    expect(await verifier.verifyEvent(fresh)).toMatchObject({
      state: 'failed',
      reason: 'not in the log after 2 minutes of checking',
    });
  });

  it('verifies an event that arrives in the log while it was waited for', async () => {
    const index = events[0].custos.log.index;
    events[0].custos.log.index = null;
    expect((await verifier.verifyEvent(events[0])).state).toBe('unsequenced');
    now += 20_000;
    events[0].custos.log.index = index;
    expect((await verifier.verifyEvent(events[0])).state).toBe('verified');
  });
});

it('says how long in words', () => {
  expect(formatAge(59_000)).toBe('0 minutes');
  expect(formatAge(60_000)).toBe('1 minute');
  expect(formatAge(119 * 60_000)).toBe('119 minutes');
  expect(formatAge(5 * 3600_000)).toBe('5 hours');
  expect(formatAge(72 * 3600_000)).toBe('3 days');
});
