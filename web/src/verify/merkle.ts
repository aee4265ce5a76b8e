// RFC 9162 (RFC 6962) Merkle tree hashing and proof verification, as the server does it
// (src/audit/merkle.cc): leaf hash SHA-256(0x00 || entry), node hash SHA-256(0x01 || l || r).
//
// Conventions (those of the published vectors in tests/testdata/rfc6962): every hash must be
// exactly 32 bytes, except that two equal sizes with equal roots and an empty proof are
// consistent whatever the roots hold; a consistency proof from size 0 is an error.
//
// Indexes and sizes are JavaScript numbers (safe integers); the walk uses BigInt so that trees
// beyond 2^31 leaves work too.

import { type Bytes, concat, equalBytes, sha256 } from './bytes';

export const HASH_SIZE = 32;

/** Why a proof did not verify: malformed (wrong sizes or lengths) or mismatch (wrong root). */
export class ProofError extends Error {
  constructor(
    readonly kind: 'malformed' | 'mismatch',
    message: string,
  ) {
    super(message);
    this.name = 'ProofError';
  }
}

export function leafHash(entry: Uint8Array): Promise<Bytes> {
  return sha256(concat(Uint8Array.of(0), entry));
}

export function nodeHash(left: Uint8Array, right: Uint8Array): Promise<Bytes> {
  return sha256(concat(Uint8Array.of(1), left, right));
}

function checkSize(what: string, n: number): bigint {
  if (!Number.isSafeInteger(n) || n < 0) throw new ProofError('malformed', `${what} is not a valid number`);
  return BigInt(n);
}

function checkHash(what: string, h: Uint8Array): void {
  if (h.length !== HASH_SIZE) {
    throw new ProofError('malformed', `${what} is ${h.length} bytes, not ${HASH_SIZE}`);
  }
}

/**
 * The root that `proof` gives for `leaf` at `index` in a tree of `size` leaves
 * (RFC 9162 section 2.1.3.2). Throws ProofError('malformed') when the proof cannot be one.
 */
export async function rootFromInclusionProof(
  index: number,
  size: number,
  leaf: Uint8Array,
  proof: readonly Uint8Array[],
): Promise<Bytes> {
  const idx = checkSize('index', index);
  const sz = checkSize('tree size', size);
  if (idx >= sz) throw new ProofError('malformed', `index ${index} is beyond tree size ${size}`);
  checkHash('leaf hash', leaf);
  proof.forEach((p, i) => checkHash(`proof hash ${i}`, p));

  let fn = idx;
  let sn = sz - 1n;
  let r: Bytes = concat(leaf);
  for (const p of proof) {
    if (sn === 0n) throw new ProofError('malformed', 'proof is longer than the path to the root');
    if ((fn & 1n) === 1n || fn === sn) {
      r = await nodeHash(p, r);
      while ((fn & 1n) === 0n && fn !== 0n) {
        fn >>= 1n;
        sn >>= 1n;
      }
    } else {
      r = await nodeHash(r, p);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  if (sn !== 0n) throw new ProofError('malformed', 'proof is shorter than the path to the root');
  return r;
}

/** Checks that `leaf` is at `index` of the tree of `size` leaves whose root is `root`. */
export async function verifyInclusion(
  index: number,
  size: number,
  leaf: Uint8Array,
  proof: readonly Uint8Array[],
  root: Uint8Array,
): Promise<void> {
  checkHash('root', root);
  const computed = await rootFromInclusionProof(index, size, leaf, proof);
  if (!equalBytes(computed, root)) {
    throw new ProofError('mismatch', `computed root differs from the given root (leaf ${index} of tree size ${size})`);
  }
}

/**
 * Checks that the tree of `size1` leaves with `root1` is a prefix of the tree of `size2` leaves
 * with `root2` (RFC 9162 section 2.1.4.2).
 */
export async function verifyConsistency(
  size1: number,
  size2: number,
  proof: readonly Uint8Array[],
  root1: Uint8Array,
  root2: Uint8Array,
): Promise<void> {
  const s1 = checkSize('size1', size1);
  const s2 = checkSize('size2', size2);
  if (s1 > s2) throw new ProofError('malformed', `size1 ${size1} is greater than size2 ${size2}`);
  if (s1 === 0n) throw new ProofError('malformed', 'size1 is 0: consistency with the empty tree is not proven by a proof');
  if (s1 === s2) {
    if (proof.length !== 0) throw new ProofError('malformed', `proof has ${proof.length} hashes, expected 0 for equal sizes`);
    if (!equalBytes(root1, root2)) throw new ProofError('mismatch', `roots differ for equal tree sizes ${size1}`);
    return;
  }
  checkHash('root1', root1);
  checkHash('root2', root2);
  proof.forEach((p, i) => checkHash(`proof hash ${i}`, p));
  if (proof.length === 0) throw new ProofError('malformed', 'empty consistency proof for different sizes');

  // When size1 is a power of two, the old root is itself a node of the new tree and starts the path.
  const path: Uint8Array[] = (s1 & (s1 - 1n)) === 0n ? [root1, ...proof] : [...proof];
  let fn = s1 - 1n;
  let sn = s2 - 1n;
  while ((fn & 1n) === 1n) {
    fn >>= 1n;
    sn >>= 1n;
  }
  let fr: Bytes = concat(path[0]);
  let sr: Bytes = concat(path[0]);
  for (const c of path.slice(1)) {
    if (sn === 0n) throw new ProofError('malformed', 'proof is longer than expected');
    if ((fn & 1n) === 1n || fn === sn) {
      fr = await nodeHash(c, fr);
      sr = await nodeHash(c, sr);
      while ((fn & 1n) === 0n && fn !== 0n) {
        fn >>= 1n;
        sn >>= 1n;
      }
    } else {
      sr = await nodeHash(sr, c);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  if (sn !== 0n) throw new ProofError('malformed', 'proof is shorter than expected');
  if (!equalBytes(fr, root1)) throw new ProofError('mismatch', `proof does not give the old root (size ${size1})`);
  if (!equalBytes(sr, root2)) throw new ProofError('mismatch', `proof does not give the new root (size ${size2})`);
}
