// Checks, in the browser, that an event shown by the console is in the tenant's verifiable log
// under a checkpoint signed by a key the browser trusts. The server's answers are inputs to the
// check, never its result:
//
//  1. the latest checkpoint's Ed25519 signature, by a key pinned in this browser (on first use,
//     or accepted by the admin when the server starts signing with another key);
//  2. its origin is the log the console expects, as the browser works it out (./origin.ts), or
//     an origin of the same tenant's log the admin accepted; never the server's say-so;
//  3. it is consistent with the last checkpoint this browser verified for that log (RFC 9162
//     consistency proof; a log that shrank or forked fails);
//  4. per event: the entry is the event without `custos`, in RFC 8785 form; its leaf hash,
//     computed here, with the inclusion proof at the checkpoint's size, gives the signed root;
//  5. an event that stays out of the log (no index, or one no checkpoint covers) fails once it
//     is clearly old enough to be in it, instead of waiting forever.
//
// Every fetch has a deadline: a server that does not answer ends in a failure, not a wait.

import { type Bytes, equalBytes, fromBase64, toBase64, toHex, utf8 } from './bytes';
import { canonicalize } from './jcs';
import { ProofError, leafHash, rootFromInclusionProof, verifyConsistency } from './merkle';
import {
  type Checkpoint,
  NoteError,
  type VerifierKey,
  keyIdHex,
  openNote,
  parseCheckpoint,
  parseVerifierKey,
  signatureKeyLabels,
} from './note';
import { isOriginOfTenant } from './origin';
import { withTimeout } from '../timeout';
import type { AcceptedOrigin, PinnedKey, TrustStore } from './trust';

export interface InclusionProof {
  origin?: string;
  index: number;
  treeSize: number;
  leafHash?: string;
  hashes: string[];
}

export interface ConsistencyProof {
  origin?: string;
  from: number;
  to: number;
  hashes: string[];
}

/**
 * Where the verifier gets its material; every answer is checked, none is believed. Each call
 * gets a signal that aborts when the verifier stops waiting for it.
 */
export interface LogSource {
  /** The latest signed checkpoint (a signed note). */
  checkpoint(signal?: AbortSignal): Promise<string>;
  /** The verifier keys (vkey texts) the server publishes, current first. */
  keys(signal?: AbortSignal): Promise<string[]>;
  inclusion(index: number, size: number, signal?: AbortSignal): Promise<InclusionProof>;
  consistency(from: number, to: number, signal?: AbortSignal): Promise<ConsistencyProof>;
  /**
   * The log's leaf hash at `index` in the tree of `size` (from a tlog-tiles hash tile). Only
   * used to say why a check failed, and only once the proof confirms it.
   */
  leafHashAt?(index: number, size: number, signal?: AbortSignal): Promise<Uint8Array>;
}

/** The C2SP tlog-tiles path of the level-0 tile that holds leaf `index` in a tree of `size`. */
export function leafTilePath(index: number, size: number): string {
  const n = Math.floor(index / 256);
  const width = Math.min(256, size - n * 256);
  let digits = String(n);
  digits = digits.padStart(Math.ceil(digits.length / 3) * 3, '0');
  const groups = digits.match(/.{3}/g) ?? ['000'];
  const path = groups.map((g, i) => (i < groups.length - 1 ? `x${g}` : g)).join('/');
  return `tile/0/${path}${width < 256 ? `.p/${width}` : ''}`;
}

export type MarkState = 'pending' | 'verified' | 'failed' | 'unsequenced';

export interface Mark {
  state: MarkState;
  /** Why it failed (failed), or what it waits for (pending). */
  reason?: string;
  index?: number;
  treeSize?: number;
  /** Hex of the leaf hash computed in the browser. */
  leafHash?: string;
}

export type CheckpointStatus =
  | { state: 'unknown' }
  | {
      state: 'ok';
      checkpoint: Checkpoint;
      note: string;
      signedBy: string[];
      pinned: PinnedKey[];
      firstUse: boolean;
    }
  | {
      state: 'failed';
      reason: string;
      /** Keys the server publishes that sign the checkpoint but are not pinned here. */
      newKeys?: VerifierKey[];
      /** The failure is an inconsistency with the remembered checkpoint of this origin. */
      inconsistentWith?: { origin: string; size: number };
      /**
       * The checkpoint is of another origin of the same tenant's log (the server's public
       * address changed after the log began): the admin may accept it.
       */
      newOrigin?: string;
    };

export function markText(mark: Mark): string {
  switch (mark.state) {
    case 'verified':
      return 'Verified';
    case 'failed':
      return `Verification failed: ${mark.reason ?? 'unknown reason'}`;
    case 'unsequenced':
      return 'Not yet in the log';
    default:
      return 'Verifying…';
  }
}

/**
 * The log entry of an event as text: its canonical JSON (RFC 8785) without the `custos`
 * member, which the server adds when it answers and the log does not cover.
 */
export function entryText(event: Record<string, unknown>): string {
  const copy: Record<string, unknown> = { ...event };
  delete copy.custos;
  return canonicalize(copy);
}

/** The log entry of an event, as UTF-8: what the leaf hash is computed over. */
export function entryBytes(event: Record<string, unknown>): Bytes {
  return utf8(entryText(event));
}

/** "3 minutes", "5 hours", "2 days": how long, for a reason. */
export function formatAge(ms: number): string {
  const minutes = Math.max(0, Math.floor(ms / 60_000));
  if (minutes < 120) return `${minutes} minute${minutes === 1 ? '' : 's'}`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours} hours`;
  return `${Math.floor(hours / 24)} days`;
}

class Limiter {
  private active = 0;
  private readonly waiting: Array<() => void> = [];
  constructor(private readonly max: number) {}
  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.active >= this.max) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.active++;
    try {
      return await task();
    } finally {
      this.active--;
      this.waiting.shift()?.();
    }
  }
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Deadline of each fetch (checkpoint, keys, proofs, tiles). */
export const FETCH_TIMEOUT_MS = 15_000;
/** An event published this long before a checkpoint was fetched must be in it. */
export const WAIT_MARGIN_MS = 2 * 60_000;
/**
 * How long this browser waits for an event before it applies the margin above: the margin
 * compares the server's `published` with this browser's clock, which may be off by minutes.
 */
export const WAIT_GRACE_MS = 30_000;

export interface LogVerifierOptions {
  /**
   * The origin of the log the console expects, worked out by the browser (./origin.ts). A
   * checkpoint of another origin fails, unless the admin accepted that origin (acceptOrigin).
   */
  expectedOrigin: string;
  /** The tenant whose log it is: an accepted origin must name it (isOriginOfTenant). */
  tenant?: string;
  now?: () => Date;
  /** Minimum time between two checkpoint fetches made to cover a newer event. */
  refreshIntervalMs?: number;
  fetchTimeoutMs?: number;
  waitMarginMs?: number;
  waitGraceMs?: number;
}

export class LogVerifier {
  status: CheckpointStatus = { state: 'unknown' };
  private inflight: Promise<CheckpointStatus> | null = null;
  private lastFetch = 0;
  /** When (this.now(), ms) the newest checkpoint was asked for; NaN before the first. */
  private checkpointAskedAt = Number.NaN;
  private readonly cache = new Map<string, Mark>();
  /** "<uuid>:<leaf hex>" of an event not (yet) in the log -> when this browser first saw it. */
  private readonly waitingSince = new Map<string, number>();
  private readonly limiter = new Limiter(4);

  constructor(
    private readonly source: LogSource,
    private readonly trust: TrustStore,
    private readonly options: LogVerifierOptions,
  ) {}

  private now(): Date {
    return this.options.now ? this.options.now() : new Date();
  }

  /** `fetch`, given up on (and aborted) after the fetch timeout. */
  private fetch<T>(fetch: (signal: AbortSignal) => Promise<T>): Promise<T> {
    return withTimeout(this.options.fetchTimeoutMs ?? FETCH_TIMEOUT_MS, fetch);
  }

  /** The origin the admin accepted in place of the expected one, if any. */
  get acceptedOrigin(): AcceptedOrigin | null {
    return this.options.expectedOrigin ? this.trust.acceptedOrigin(this.options.expectedOrigin) : null;
  }

  /** The origin the checkpoint must have: the one the admin accepted, or the expected one. */
  get origin(): string {
    const derived = this.options.expectedOrigin;
    return this.acceptedOrigin?.origin || derived;
  }

  /** Fetches and checks the latest checkpoint (one fetch at a time). */
  refresh(): Promise<CheckpointStatus> {
    if (!this.inflight) {
      this.lastFetch = Date.now();
      this.checkpointAskedAt = this.now().getTime();
      this.inflight = this.check()
        .catch((e): CheckpointStatus => ({ state: 'failed', reason: `could not check the log: ${message(e)}` }))
        .then((st) => {
          this.status = st;
          this.inflight = null;
          return st;
        });
    }
    return this.inflight;
  }

  private async ensure(): Promise<CheckpointStatus> {
    if (this.inflight) return this.inflight;
    if (this.status.state === 'unknown') return this.refresh();
    return this.status;
  }

  /** Pins `keys` (the admin accepted them) and checks the checkpoint again. */
  acceptKeys(keys: VerifierKey[]): Promise<CheckpointStatus> {
    const pinned = this.trust.pinnedKeys();
    const at = this.now().toISOString();
    for (const k of keys) {
      if (!pinned.some((p) => p.vkey === k.vkey)) {
        pinned.push({ vkey: k.vkey, label: `${k.name}+${keyIdHex(k.keyId)}`, pinnedAt: at, how: 'accepted' });
      }
    }
    this.trust.setPinnedKeys(pinned);
    this.cache.clear();
    return this.refresh();
  }

  /**
   * Accepts `origin` for the tenant's log in place of the one the console worked out (the
   * admin knows the server's public address changed after the log began), then checks again.
   */
  acceptOrigin(origin: string): Promise<CheckpointStatus> {
    const derived = this.options.expectedOrigin;
    const tenant = this.options.tenant;
    if (derived && tenant && origin !== derived && isOriginOfTenant(origin, tenant)) {
      this.trust.setAcceptedOrigin(derived, { origin, acceptedAt: this.now().toISOString() });
    }
    this.cache.clear();
    return this.refresh();
  }

  /** Forgets the remembered checkpoint of `origin` (the admin knows the log was reset). */
  forgetCheckpoint(origin: string): Promise<CheckpointStatus> {
    this.trust.forgetCheckpoint(origin);
    this.cache.clear();
    return this.refresh();
  }

  private async parseKeys(vkeys: readonly string[]): Promise<VerifierKey[]> {
    const out: VerifierKey[] = [];
    for (const v of vkeys) {
      try {
        out.push(await parseVerifierKey(v.trim()));
      } catch {
        // a key we cannot read cannot vouch for anything; it is simply not used
      }
    }
    return out;
  }

  private async check(): Promise<CheckpointStatus> {
    const expected = this.origin;
    if (!expected) return { state: 'failed', reason: 'the console cannot tell which log to expect' };
    let note: string;
    try {
      note = await this.fetch((signal) => this.source.checkpoint(signal));
    } catch (e) {
      return { state: 'failed', reason: `could not fetch the checkpoint (${message(e)})` };
    }
    let serverKeys: VerifierKey[] = [];
    try {
      serverKeys = await this.parseKeys(await this.fetch((signal) => this.source.keys(signal)));
    } catch {
      // without the server's list only pinned keys count, which is all that matters
    }

    let pinned = this.trust.pinnedKeys();
    let firstUse = false;
    if (pinned.length === 0) {
      if (serverKeys.length === 0) return { state: 'failed', reason: 'the server publishes no valid log key' };
      const at = this.now().toISOString();
      pinned = serverKeys.map((k) => ({
        vkey: k.vkey,
        label: `${k.name}+${keyIdHex(k.keyId)}`,
        pinnedAt: at,
        how: 'first-use' as const,
      }));
      this.trust.setPinnedKeys(pinned);
      firstUse = true;
    }
    const pinnedKeys = await this.parseKeys(pinned.map((p) => p.vkey));

    let signedBy: string[];
    let body: string;
    try {
      ({ body, signedBy } = await openNote(note, pinnedKeys));
    } catch (e) {
      if (e instanceof NoteError && e.kind === 'unknown-key') {
        const unpinned = serverKeys.filter((k) => !pinnedKeys.some((p) => p.vkey === k.vkey));
        try {
          const opened = await openNote(note, unpinned);
          const newKeys = unpinned.filter((k) => opened.signedBy.includes(`${k.name}+${keyIdHex(k.keyId)}`));
          return {
            state: 'failed',
            reason: `checkpoint is signed by a key this browser has not pinned (${opened.signedBy.join(', ')})`,
            newKeys,
          };
        } catch {
          const labels = signatureKeyLabels(note);
          return {
            state: 'failed',
            reason: `checkpoint is not signed by a pinned key${labels.length ? ` (signed by ${labels.join(', ')})` : ''}`,
          };
        }
      }
      if (e instanceof NoteError && e.kind === 'unauthenticated') {
        return { state: 'failed', reason: `checkpoint signature invalid (${e.message})` };
      }
      return { state: 'failed', reason: `checkpoint is malformed (${message(e)})` };
    }

    let checkpoint: Checkpoint;
    try {
      checkpoint = parseCheckpoint(body);
    } catch (e) {
      return { state: 'failed', reason: `checkpoint is malformed (${message(e)})` };
    }
    if (checkpoint.origin !== expected) {
      const tenant = this.options.tenant;
      const sameTenant = !!tenant && isOriginOfTenant(checkpoint.origin, tenant);
      return {
        state: 'failed',
        reason: `checkpoint is of another log (${checkpoint.origin}, expected ${expected})`,
        ...(sameTenant ? { newOrigin: checkpoint.origin } : {}),
      };
    }

    // Remembered under the origin this browser expects (equal to the checkpoint's, checked above).
    const remembered = this.trust.checkpoint(expected);
    if (remembered) {
      const inconsistent = (why: string): CheckpointStatus => ({
        state: 'failed',
        reason: why,
        inconsistentWith: { origin: expected, size: remembered.size },
      });
      let rememberedRoot: Bytes;
      try {
        rememberedRoot = fromBase64(remembered.root);
      } catch {
        rememberedRoot = new Uint8Array(0);
      }
      if (checkpoint.size < remembered.size) {
        return inconsistent(
          `the log shrank: checkpoint size ${checkpoint.size}, but this browser verified size ${remembered.size} before`,
        );
      }
      if (checkpoint.size === remembered.size) {
        if (!equalBytes(checkpoint.rootHash, rememberedRoot)) {
          return inconsistent(`the log forked: another root at size ${checkpoint.size} than this browser verified before`);
        }
      } else if (remembered.size > 0) {
        try {
          const proof = await this.fetch((signal) => this.source.consistency(remembered.size, checkpoint.size, signal));
          if (proof.from !== remembered.size || proof.to !== checkpoint.size) {
            throw new ProofError('malformed', 'the proof is for other sizes');
          }
          await verifyConsistency(
            remembered.size,
            checkpoint.size,
            proof.hashes.map((h) => fromBase64(h)),
            rememberedRoot,
            checkpoint.rootHash,
          );
        } catch (e) {
          return inconsistent(
            `checkpoint is not consistent with the one this browser verified before (size ${remembered.size}): ${message(e)}`,
          );
        }
      }
    }
    if (!remembered || checkpoint.size > remembered.size) {
      this.trust.setCheckpoint(expected, {
        size: checkpoint.size,
        root: toBase64(checkpoint.rootHash),
        seenAt: this.now().toISOString(),
      });
    }
    return { state: 'ok', checkpoint, note, signedBy, pinned: this.trust.pinnedKeys(), firstUse };
  }

  /**
   * `mark` (unsequenced, or pending a checkpoint that covers the event) while the event may
   * still be on its way into the log; a failure once it clearly is not: this browser has
   * waited for it for the margin, or (after a grace, since the clocks differ) it was published
   * more than the margin before the newest checkpoint was asked for. An edited event that
   * lost its index, or claims one far ahead, cannot wait forever.
   */
  private waiting(record: Record<string, unknown>, key: string, mark: Mark): Mark {
    const now = this.now().getTime();
    let since = this.waitingSince.get(key);
    if (since === undefined) {
      since = now;
      this.waitingSince.set(key, since);
    }
    const margin = this.options.waitMarginMs ?? WAIT_MARGIN_MS;
    const grace = this.options.waitGraceMs ?? WAIT_GRACE_MS;
    const what =
      mark.state === 'unsequenced'
        ? 'not in the log'
        : `not in a signed checkpoint (index ${mark.index}, checkpoint size ${mark.treeSize})`;
    const waited = now - since;
    const published = typeof record.published === 'string' ? Date.parse(record.published) : Number.NaN;
    const late = this.checkpointAskedAt - published;
    if (waited >= grace && Number.isFinite(late) && late > margin) {
      return { ...mark, state: 'failed', reason: `${what} ${formatAge(late)} after it was published` };
    }
    if (waited >= margin) {
      return { ...mark, state: 'failed', reason: `${what} after ${formatAge(waited)} of checking` };
    }
    return mark;
  }

  /** Verifies one event as the System Log API returned it (parsed JSON). */
  async verifyEvent(event: unknown): Promise<Mark> {
    if (typeof event !== 'object' || event === null || Array.isArray(event)) {
      return { state: 'failed', reason: 'the event is not a JSON object' };
    }
    const record = event as Record<string, unknown>;
    const custos = record.custos as { log?: { origin?: unknown; index?: unknown } } | undefined;
    const log = custos?.log;
    const sequenced = !!log && log.index !== null && log.index !== undefined;
    const index = log?.index;
    if (sequenced && (typeof index !== 'number' || !Number.isSafeInteger(index) || index < 0)) {
      return { state: 'failed', reason: 'the event has no valid log index' };
    }

    let entry: Bytes;
    try {
      entry = entryBytes(record);
    } catch (e) {
      return { state: 'failed', reason: `the event cannot be put in canonical form (${message(e)})` };
    }
    const leaf = await leafHash(entry);
    const waitingKey = `${String(record.uuid)}:${toHex(leaf)}`;
    if (!sequenced || typeof index !== 'number') {
      await this.ensure();
      return this.waiting(record, waitingKey, { state: 'unsequenced' });
    }
    const cacheKey = `${String(record.uuid)}:${index}:${toHex(leaf)}`;
    const cached = this.cache.get(cacheKey);
    if (cached) return cached;

    let st = await this.ensure();
    if (st.state === 'ok' && index >= st.checkpoint.size) {
      const interval = this.options.refreshIntervalMs ?? 1000;
      if (Date.now() - this.lastFetch >= interval) st = await this.refresh();
    }
    if (st.state !== 'ok') {
      return { state: 'failed', reason: st.state === 'failed' ? st.reason : 'no checkpoint', index };
    }
    const cp = st.checkpoint;
    if (typeof log.origin === 'string' && log.origin !== cp.origin) {
      return { state: 'failed', reason: `the event names another log (${log.origin})`, index };
    }
    if (index >= cp.size) {
      return this.waiting(record, waitingKey, {
        state: 'pending',
        reason: `waiting for a checkpoint that covers index ${index}`,
        index,
        treeSize: cp.size,
      });
    }
    this.waitingSince.delete(waitingKey);

    let proof: InclusionProof;
    try {
      proof = await this.limiter.run(() => this.fetch((signal) => this.source.inclusion(index, cp.size, signal)));
    } catch (e) {
      // Not cached: a network problem may pass.
      return { state: 'failed', reason: `could not fetch the inclusion proof (${message(e)})`, index };
    }
    const done = (mark: Mark): Mark => {
      this.cache.set(cacheKey, mark);
      return mark;
    };
    const base = { index, treeSize: cp.size, leafHash: toHex(leaf) };
    if (proof.index !== index || proof.treeSize !== cp.size) {
      return done({ ...base, state: 'failed', reason: 'the server sent a proof for another position' });
    }
    let root: Bytes;
    try {
      const hashes = (Array.isArray(proof.hashes) ? proof.hashes : []).map((h) => fromBase64(String(h)));
      root = await rootFromInclusionProof(index, cp.size, leaf, hashes);
    } catch (e) {
      return done({ ...base, state: 'failed', reason: `malformed inclusion proof (${message(e)})` });
    }
    if (equalBytes(root, cp.rootHash)) return done({ ...base, state: 'verified' });

    // The root differs. Whose fault? If the log's own leaf at this index (from its hash tile)
    // gives the signed root with this proof, the proof is sound and the event is not that leaf.
    if (this.source.leafHashAt) {
      try {
        const leafHashAt = this.source.leafHashAt.bind(this.source);
        const treeLeaf = await this.fetch((signal) => leafHashAt(index, cp.size, signal));
        const hashes = proof.hashes.map((h) => fromBase64(String(h)));
        const treeRoot = await rootFromInclusionProof(index, cp.size, treeLeaf, hashes);
        if (equalBytes(treeRoot, cp.rootHash) && !equalBytes(treeLeaf, leaf)) {
          return done({ ...base, state: 'failed', reason: `event does not match the log at index ${index}` });
        }
      } catch {
        // no tile, or one that proves nothing: the plainer reason below
      }
    }
    let serverLeaf: Bytes | null = null;
    try {
      serverLeaf = typeof proof.leafHash === 'string' ? fromBase64(proof.leafHash) : null;
    } catch {
      serverLeaf = null;
    }
    if (serverLeaf && !equalBytes(serverLeaf, leaf)) {
      return done({ ...base, state: 'failed', reason: `event does not match the log at index ${index}` });
    }
    return done({ ...base, state: 'failed', reason: 'inclusion proof does not match the signed checkpoint' });
  }
}
