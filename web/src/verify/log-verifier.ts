// Checks, in the browser, that an event shown by the console is in the tenant's verifiable log
// under a checkpoint signed by a key the browser trusts. The server's answers are inputs to the
// check, never its result:
//
//  1. the latest checkpoint's Ed25519 signature, by a key pinned in this browser (on first use,
//     or accepted by the admin when the server starts signing with another key);
//  2. its origin is the log the console expects;
//  3. it is consistent with the last checkpoint this browser verified for that log (RFC 9162
//     consistency proof; a log that shrank or forked fails);
//  4. per event: the entry is the event without `custos`, in RFC 8785 form; its leaf hash,
//     computed here, with the inclusion proof at the checkpoint's size, gives the signed root.

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
import type { PinnedKey, TrustStore } from './trust';

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

/** Where the verifier gets its material; every answer is checked, none is believed. */
export interface LogSource {
  /** The latest signed checkpoint (a signed note). */
  checkpoint(): Promise<string>;
  /** The verifier keys (vkey texts) the server publishes, current first. */
  keys(): Promise<string[]>;
  inclusion(index: number, size: number): Promise<InclusionProof>;
  consistency(from: number, to: number): Promise<ConsistencyProof>;
  /**
   * The log's leaf hash at `index` in the tree of `size` (from a tlog-tiles hash tile). Only
   * used to say why a check failed, and only once the proof confirms it.
   */
  leafHashAt?(index: number, size: number): Promise<Uint8Array>;
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

/** The log entry of an event: its canonical JSON without the `custos` member, as UTF-8. */
export function entryBytes(event: Record<string, unknown>): Bytes {
  const copy: Record<string, unknown> = { ...event };
  delete copy.custos;
  return utf8(canonicalize(copy));
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

export interface LogVerifierOptions {
  /** The origin the console expects (from its session); checkpoints of another log fail. */
  expectedOrigin?: string;
  now?: () => Date;
  /** Minimum time between two checkpoint fetches made to cover a newer event. */
  refreshIntervalMs?: number;
}

export class LogVerifier {
  status: CheckpointStatus = { state: 'unknown' };
  private inflight: Promise<CheckpointStatus> | null = null;
  private lastFetch = 0;
  private readonly cache = new Map<string, Mark>();
  private readonly limiter = new Limiter(4);

  constructor(
    private readonly source: LogSource,
    private readonly trust: TrustStore,
    private readonly options: LogVerifierOptions = {},
  ) {}

  private now(): Date {
    return this.options.now ? this.options.now() : new Date();
  }

  /** Fetches and checks the latest checkpoint (one fetch at a time). */
  refresh(): Promise<CheckpointStatus> {
    if (!this.inflight) {
      this.lastFetch = Date.now();
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
    const note = await this.source.checkpoint();
    let serverKeys: VerifierKey[] = [];
    try {
      serverKeys = await this.parseKeys(await this.source.keys());
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
    const expected = this.options.expectedOrigin;
    if (expected && checkpoint.origin !== expected) {
      return { state: 'failed', reason: `checkpoint is of another log (${checkpoint.origin}, expected ${expected})` };
    }

    const remembered = this.trust.checkpoint(checkpoint.origin);
    if (remembered) {
      const inconsistent = (why: string): CheckpointStatus => ({
        state: 'failed',
        reason: why,
        inconsistentWith: { origin: checkpoint.origin, size: remembered.size },
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
          const proof = await this.source.consistency(remembered.size, checkpoint.size);
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
      this.trust.setCheckpoint(checkpoint.origin, {
        size: checkpoint.size,
        root: toBase64(checkpoint.rootHash),
        seenAt: this.now().toISOString(),
      });
    }
    return { state: 'ok', checkpoint, note, signedBy, pinned: this.trust.pinnedKeys(), firstUse };
  }

  /** Verifies one event as the System Log API returned it (parsed JSON). */
  async verifyEvent(event: unknown): Promise<Mark> {
    if (typeof event !== 'object' || event === null || Array.isArray(event)) {
      return { state: 'failed', reason: 'the event is not a JSON object' };
    }
    const record = event as Record<string, unknown>;
    const custos = record.custos as { log?: { origin?: unknown; index?: unknown } } | undefined;
    const log = custos?.log;
    if (!log || log.index === null || log.index === undefined) return { state: 'unsequenced' };
    const index = log.index;
    if (typeof index !== 'number' || !Number.isSafeInteger(index) || index < 0) {
      return { state: 'failed', reason: 'the event has no valid log index' };
    }

    let entry: Bytes;
    try {
      entry = entryBytes(record);
    } catch (e) {
      return { state: 'failed', reason: `the event cannot be put in canonical form (${message(e)})` };
    }
    const leaf = await leafHash(entry);
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
      return { state: 'pending', reason: `waiting for a checkpoint that covers index ${index}`, index };
    }

    let proof: InclusionProof;
    try {
      proof = await this.limiter.run(() => this.source.inclusion(index, cp.size));
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
        const treeLeaf = await this.source.leafHashAt(index, cp.size);
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
