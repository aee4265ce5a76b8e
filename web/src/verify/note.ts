// C2SP signed notes (https://c2sp.org/signed-note) with Ed25519 keys, and C2SP tlog-checkpoint
// bodies, exactly as the server writes them (src/audit/note.cc, src/audit/checkpoint.cc).
//
//   verifier key: "<name>+<8 hex digits of key id>+<base64(0x01 || 32-byte public key)>"
//   key id:       first 4 bytes (big-endian) of SHA-256(name || "\n" || 0x01 || public key)
//   note:         body (ending in "\n"), a blank line, then lines
//                 "— <name> <base64(4-byte key id || 64-byte signature)>\n"
//
// Signatures are checked with WebCrypto Ed25519; nothing here trusts the server.

import { type Bytes, concat, fromBase64, sha256, utf8 } from './bytes';

export class NoteError extends Error {
  constructor(
    readonly kind: 'malformed' | 'unauthenticated' | 'unknown-key',
    message: string,
  ) {
    super(message);
    this.name = 'NoteError';
  }
}

export interface VerifierKey {
  name: string;
  keyId: number;
  publicKey: Bytes;
  /** The key's text, as it was parsed. */
  vkey: string;
}

export interface OpenedNote {
  /** The signed text, final newline included. */
  body: string;
  /** The given keys whose signature verified, as "<name>+<hex id>". */
  signedBy: string[];
}

export interface Checkpoint {
  origin: string;
  size: number;
  rootHash: Bytes;
  extensions: string[];
}

const ALG_ED25519 = 0x01;
const SIG_PREFIX = '\u2014 ';
const MAX_SIGNATURES = 100;

export function keyIdHex(id: number): string {
  return id.toString(16).padStart(8, '0');
}

export async function computeKeyId(name: string, publicKey: Uint8Array): Promise<number> {
  const digest = await sha256(concat(utf8(name + '\n'), Uint8Array.of(ALG_ED25519), publicKey));
  return ((digest[0] << 24) | (digest[1] << 16) | (digest[2] << 8) | digest[3]) >>> 0;
}

function isSpaceOrControl(cp: number): boolean {
  if (cp <= 0x20 || (cp >= 0x7f && cp <= 0xa0)) return true;
  return (
    cp === 0x1680 ||
    (cp >= 0x2000 && cp <= 0x200a) ||
    cp === 0x2028 ||
    cp === 0x2029 ||
    cp === 0x202f ||
    cp === 0x205f ||
    cp === 0x3000
  );
}

/** Non-empty, no '+', no whitespace or control characters, no lone surrogates. */
export function isValidKeyName(name: string): boolean {
  if (name.length === 0) return false;
  for (const ch of name) {
    const cp = ch.codePointAt(0)!;
    if (cp >= 0xd800 && cp <= 0xdfff) return false;
    if (ch === '+' || isSpaceOrControl(cp)) return false;
  }
  return true;
}

/** Parses and checks a vkey: name, 8-hex-digit id, Ed25519 algorithm byte, length, key id. */
export async function parseVerifierKey(vkey: string): Promise<VerifierKey> {
  const bad = (why: string) => new NoteError('malformed', `malformed verifier key: ${why}`);
  const first = vkey.indexOf('+');
  const second = first < 0 ? -1 : vkey.indexOf('+', first + 1);
  if (first < 0 || second < 0) throw bad('expected <name>+<key id>+<key>');
  const name = vkey.slice(0, first);
  const hexId = vkey.slice(first + 1, second);
  const b64 = vkey.slice(second + 1);
  if (!isValidKeyName(name)) throw bad('invalid key name');
  if (!/^[0-9a-fA-F]{8}$/.test(hexId)) throw bad('the key id must be 8 hex digits');
  let key: Bytes;
  try {
    key = fromBase64(b64);
  } catch {
    throw bad('the key is not valid base64');
  }
  if (key.length === 0 || key[0] !== ALG_ED25519) throw bad('unsupported key algorithm');
  if (key.length !== 33) throw bad('an Ed25519 key must be 32 bytes');
  const publicKey = key.slice(1);
  const keyId = parseInt(hexId, 16) >>> 0;
  if (keyId !== (await computeKeyId(name, publicKey))) throw bad('key id does not match the key');
  return { name, keyId, publicKey, vkey };
}

async function ed25519Verify(publicKey: Bytes, signature: Bytes, message: Bytes): Promise<boolean> {
  let key: CryptoKey;
  try {
    key = await crypto.subtle.importKey('raw', publicKey, { name: 'Ed25519' }, false, ['verify']);
  } catch (e) {
    throw new NoteError('unauthenticated', `this browser cannot check Ed25519 signatures (${String(e)})`);
  }
  return crypto.subtle.verify({ name: 'Ed25519' }, key, signature, message);
}

/**
 * Checks `note` against `keys`, as the server's note::Open: lines by other keys are ignored
 * but must be well formed; at least one signature by a given key must verify and none may fail.
 * NoteError kinds: 'malformed', 'unauthenticated' (a signature by a given key does not verify),
 * 'unknown-key' (no signature by any given key).
 */
export async function openNote(note: string, keys: readonly VerifierKey[]): Promise<OpenedNote> {
  const malformed = (why: string) => new NoteError('malformed', `malformed signed note: ${why}`);
  const split = note.lastIndexOf('\n\n');
  if (split < 0) throw malformed('no blank line before the signatures');
  const body = note.slice(0, split + 1);
  let sigs = note.slice(split + 2);
  if (sigs.length === 0) throw malformed('no signature lines');
  if (!sigs.endsWith('\n')) throw malformed('the last signature line does not end in a newline');

  const bodyBytes = utf8(body);
  const seen = new Set<string>();
  const signedBy: string[] = [];
  let count = 0;
  while (sigs.length > 0) {
    const eol = sigs.indexOf('\n');
    let line = sigs.slice(0, eol);
    sigs = sigs.slice(eol + 1);
    if (++count > MAX_SIGNATURES) throw malformed('more than 100 signatures');
    if (!line.startsWith(SIG_PREFIX)) throw malformed('a signature line does not start with an em dash and a space');
    line = line.slice(SIG_PREFIX.length);
    const space = line.indexOf(' ');
    if (space < 0) throw malformed('a signature line has no signature');
    const name = line.slice(0, space);
    if (!isValidKeyName(name)) throw malformed('a signature line has an invalid key name');
    let blob: Bytes;
    try {
      blob = fromBase64(line.slice(space + 1));
    } catch {
      throw malformed(`signature by ${name} is not valid base64`);
    }
    if (blob.length <= 4) throw malformed(`signature by ${name} is too short`);
    const keyId = ((blob[0] << 24) | (blob[1] << 16) | (blob[2] << 8) | blob[3]) >>> 0;
    const key = keys.find((k) => k.name === name && k.keyId === keyId);
    if (!key) continue;
    const label = `${name}+${keyIdHex(keyId)}`;
    if (seen.has(label)) throw malformed(`two signatures by key ${label}`);
    seen.add(label);
    if (!(await ed25519Verify(key.publicKey, blob.slice(4), bodyBytes))) {
      throw new NoteError('unauthenticated', `signature by key ${label} does not verify`);
    }
    signedBy.push(label);
  }
  if (signedBy.length === 0) throw new NoteError('unknown-key', 'note has no signature by a known key');
  return { body, signedBy };
}

/** The key ids named on a note's signature lines ("<name>+<hex id>"), without checking them. */
export function signatureKeyLabels(note: string): string[] {
  const split = note.lastIndexOf('\n\n');
  if (split < 0) return [];
  const out: string[] = [];
  for (const line of note.slice(split + 2).split('\n')) {
    if (!line.startsWith(SIG_PREFIX)) continue;
    const [name, sig] = line.slice(SIG_PREFIX.length).split(' ');
    try {
      const blob = fromBase64(sig ?? '');
      if (blob.length > 4) {
        const id = ((blob[0] << 24) | (blob[1] << 16) | (blob[2] << 8) | blob[3]) >>> 0;
        out.push(`${name}+${keyIdHex(id)}`);
      }
    } catch {
      // not a signature line we can read; the full check reports it
    }
  }
  return out;
}

/** Parses a tlog-checkpoint body (the signed text), as the server's ParseCheckpoint. */
export function parseCheckpoint(body: string): Checkpoint {
  const bad = (why: string) => new NoteError('malformed', `malformed checkpoint: ${why}`);
  if (!body.endsWith('\n')) throw bad('the body does not end in a newline');
  const lines = body.slice(0, -1).split('\n');
  if (lines.length < 3) throw bad('expected origin, size and root hash lines');
  const [origin, sizeText, rootText, ...extensions] = lines;
  if (origin.length === 0) throw bad('empty origin');
  if (!/^(0|[1-9][0-9]*)$/.test(sizeText)) throw bad('the size is not a decimal number');
  const size = Number(sizeText);
  if (!Number.isSafeInteger(size)) throw bad('the size is too large for this verifier');
  let rootHash: Bytes;
  try {
    rootHash = fromBase64(rootText);
  } catch {
    throw bad('the root hash is not base64');
  }
  if (rootHash.length !== 32) throw bad('the root hash is not 32 bytes');
  if (extensions.some((e) => e.length === 0)) throw bad('empty extension line');
  return { origin, size, rootHash, extensions };
}
