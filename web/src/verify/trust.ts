// What the browser remembers between visits, so that it need not take the server's word twice:
// the log verifier keys it pinned (on first use, or when the admin accepted a new one); per log
// origin, the last checkpoint it verified (size and root), to detect a log that shrank or
// forked since; and the log origins the admin accepted in place of the one the console works
// out itself (a log keeps its first origin when the server's public address changes).

export interface PinnedKey {
  vkey: string;
  /** "<name>+<hex id>" */
  label: string;
  pinnedAt: string;
  /** How the key came to be trusted. */
  how: 'first-use' | 'accepted';
}

export interface RememberedCheckpoint {
  size: number;
  /** base64 root hash */
  root: string;
  seenAt: string;
}

export interface AcceptedOrigin {
  origin: string;
  acceptedAt: string;
}

export interface TrustStore {
  pinnedKeys(): PinnedKey[];
  setPinnedKeys(keys: PinnedKey[]): void;
  checkpoint(origin: string): RememberedCheckpoint | null;
  setCheckpoint(origin: string, cp: RememberedCheckpoint): void;
  forgetCheckpoint(origin: string): void;
  /** The origin the admin accepted for the log the console expects at `derived`, if any. */
  acceptedOrigin(derived: string): AcceptedOrigin | null;
  setAcceptedOrigin(derived: string, accepted: AcceptedOrigin): void;
}

export const PINNED_KEYS_STORAGE_KEY = 'custos.console.logKeys';
export const CHECKPOINT_STORAGE_PREFIX = 'custos.console.checkpoint.';
export const ORIGINS_STORAGE_KEY = 'custos.console.logOrigins';

interface KeyValueStorage {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

/** A TrustStore over localStorage (or any Storage). Unreadable entries count as absent. */
export class StorageTrustStore implements TrustStore {
  constructor(private readonly storage: KeyValueStorage) {}

  pinnedKeys(): PinnedKey[] {
    try {
      const parsed: unknown = JSON.parse(this.storage.getItem(PINNED_KEYS_STORAGE_KEY) ?? '[]');
      if (!Array.isArray(parsed)) return [];
      return parsed.filter(
        (k): k is PinnedKey => typeof k === 'object' && k !== null && typeof (k as PinnedKey).vkey === 'string',
      );
    } catch {
      return [];
    }
  }

  setPinnedKeys(keys: PinnedKey[]): void {
    this.storage.setItem(PINNED_KEYS_STORAGE_KEY, JSON.stringify(keys));
  }

  checkpoint(origin: string): RememberedCheckpoint | null {
    try {
      const parsed = JSON.parse(this.storage.getItem(CHECKPOINT_STORAGE_PREFIX + origin) ?? 'null') as unknown;
      if (typeof parsed !== 'object' || parsed === null) return null;
      const cp = parsed as RememberedCheckpoint;
      if (!Number.isSafeInteger(cp.size) || typeof cp.root !== 'string') return null;
      return cp;
    } catch {
      return null;
    }
  }

  setCheckpoint(origin: string, cp: RememberedCheckpoint): void {
    this.storage.setItem(CHECKPOINT_STORAGE_PREFIX + origin, JSON.stringify(cp));
  }

  forgetCheckpoint(origin: string): void {
    this.storage.removeItem(CHECKPOINT_STORAGE_PREFIX + origin);
  }

  private origins(): Record<string, AcceptedOrigin> {
    try {
      const parsed: unknown = JSON.parse(this.storage.getItem(ORIGINS_STORAGE_KEY) ?? '{}');
      return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)
        ? (parsed as Record<string, AcceptedOrigin>)
        : {};
    } catch {
      return {};
    }
  }

  acceptedOrigin(derived: string): AcceptedOrigin | null {
    const a = Object.prototype.hasOwnProperty.call(this.origins(), derived) ? this.origins()[derived] : undefined;
    return a && typeof a === 'object' && typeof a.origin === 'string' && a.origin !== '' ? a : null;
  }

  setAcceptedOrigin(derived: string, accepted: AcceptedOrigin): void {
    this.storage.setItem(ORIGINS_STORAGE_KEY, JSON.stringify({ ...this.origins(), [derived]: accepted }));
  }
}

/** An in-memory TrustStore (tests, or a browser without storage). */
export class MemoryTrustStore extends StorageTrustStore {
  constructor() {
    const map = new Map<string, string>();
    super({
      getItem: (k) => map.get(k) ?? null,
      setItem: (k, v) => void map.set(k, v),
      removeItem: (k) => void map.delete(k),
    });
  }
}
