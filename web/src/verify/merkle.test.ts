// Merkle hashing and proofs against the published RFC 6962 / RFC 9162 vectors that the server's
// own tests use (tests/testdata/rfc6962, Apache-2.0, from github.com/transparency-dev/merkle; see
// its README), read from the repository so both sides check the same files.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { fromBase64, fromHex, sha256, toHex, utf8 } from './bytes';
import { ProofError, leafHash, nodeHash, rootFromInclusionProof, verifyConsistency, verifyInclusion } from './merkle';

const VECTORS = fileURLToPath(new URL('../../../tests/testdata/rfc6962/', import.meta.url));

function jsonFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return jsonFiles(path);
    return name.endsWith('.json') ? [path] : [];
  });
}

// Garbage-padded vectors hold base64 of more or fewer than 32 bytes; decoding must not hide that.
const b64 = (s: string | null | undefined) => fromBase64(s ?? '');

interface InclusionVector {
  leafIdx: number;
  treeSize: number;
  root: string;
  leafHash: string;
  proof: string[] | null;
  desc: string;
  wantErr: boolean;
}

interface ConsistencyVector {
  size1: number;
  size2: number;
  root1: string;
  root2: string;
  proof: string[] | null;
  desc: string;
  wantErr: boolean;
}

const inclusion = jsonFiles(join(VECTORS, 'inclusion'));
const consistency = jsonFiles(join(VECTORS, 'consistency'));

describe('RFC 6962 known answers (tests/testdata/rfc6962/README.md)', () => {
  it('hashes the empty tree, leaves and nodes', async () => {
    expect(toHex(await sha256(new Uint8Array(0)))).toBe(
      'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    );
    expect(toHex(await leafHash(new Uint8Array(0)))).toBe(
      '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
    );
    expect(toHex(await leafHash(utf8('L123456')))).toBe(
      '395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56',
    );
    expect(toHex(await nodeHash(utf8('N123'), utf8('N456')))).toBe(
      'aa217fe888e47007fa15edab33c2b492a722cb106c64667fc2b044444de66bbb',
    );
  });

  it('builds the root of the eight classic leaves', async () => {
    const leaves = ['', '00', '10', '2021', '3031', '40414243', '5051525354555657', '606162636465666768696a6b6c6d6e6f'];
    const hashes = await Promise.all(leaves.map((l) => leafHash(fromHex(l))));
    const level1 = await Promise.all([0, 2, 4, 6].map((i) => nodeHash(hashes[i], hashes[i + 1])));
    const level2 = await Promise.all([nodeHash(level1[0], level1[1]), nodeHash(level1[2], level1[3])]);
    const root = await nodeHash(level2[0], level2[1]);
    expect(toHex(root)).toBe('5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328');
  });
});

describe('inclusion proof vectors', () => {
  it('finds the vectors', () => {
    expect(inclusion.length).toBeGreaterThan(50);
  });

  it.each(inclusion.map((f) => [f.slice(VECTORS.length), f]))('%s', async (_name, file) => {
    const v = JSON.parse(readFileSync(file, 'utf8')) as InclusionVector;
    const run = async () => {
      await verifyInclusion(v.leafIdx, v.treeSize, b64(v.leafHash), (v.proof ?? []).map(b64), b64(v.root));
    };
    if (v.wantErr) {
      await expect(run()).rejects.toBeInstanceOf(ProofError);
    } else {
      await expect(run()).resolves.toBeUndefined();
    }
  });

  it('fails when one bit of a proof hash flips', async () => {
    const v = JSON.parse(readFileSync(join(VECTORS, 'inclusion/1/happy-path.json'), 'utf8')) as InclusionVector;
    const proof = (v.proof ?? []).map(b64);
    proof[1][7] ^= 0x10;
    await expect(verifyInclusion(v.leafIdx, v.treeSize, b64(v.leafHash), proof, b64(v.root))).rejects.toMatchObject({
      kind: 'mismatch',
    });
  });

  it('walks trees beyond 32-bit sizes', async () => {
    // A tree of 2^40 + 1 leaves: the last leaf hangs alone off the root's right child.
    const leaf = await leafHash(utf8('x'));
    const left = await sha256(utf8('left subtree'));
    const root = await rootFromInclusionProof(2 ** 40, 2 ** 40 + 1, leaf, [left]);
    expect(toHex(root)).toBe(toHex(await nodeHash(left, leaf)));
  });
});

describe('consistency proof vectors', () => {
  it('finds the vectors', () => {
    expect(consistency.length).toBeGreaterThan(50);
  });

  it.each(consistency.map((f) => [f.slice(VECTORS.length), f]))('%s', async (_name, file) => {
    const v = JSON.parse(readFileSync(file, 'utf8')) as ConsistencyVector;
    const run = async () => {
      await verifyConsistency(v.size1, v.size2, (v.proof ?? []).map(b64), b64(v.root1), b64(v.root2));
    };
    if (v.wantErr) {
      await expect(run()).rejects.toBeInstanceOf(ProofError);
    } else {
      await expect(run()).resolves.toBeUndefined();
    }
  });
});
