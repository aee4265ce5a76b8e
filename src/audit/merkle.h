#pragma once

// RFC 9162 (Certificate Transparency 2.0) Merkle tree hashing, proof generation and proof
// verification, the base of the per-tenant verifiable System Log.
//
// Every hash is a raw 32-byte SHA-256 digest held in a std::string. A tree of size n is the
// Merkle Tree Hash (MTH) of its first n leaf hashes, where a leaf hash is LeafHash(entry).
//
// All functions are pure and thread-safe.
//
// Verifier conventions (the ones the published RFC 6962 / RFC 9162 vectors in
// tests/testdata/rfc6962 take):
// - every hash (leaf hash, root, proof element) must be exactly 32 bytes, except that a
//   consistency check between two equal sizes with equal roots and an empty proof succeeds
//   whatever the roots hold;
// - a consistency proof from a tree of size 0 is an error (a witness accepting `old 0` must
//   handle that case before calling the verifier).
//
// Error codes of the verifiers:
// - kInvalidArgument: the request or the proof is malformed (index beyond the tree, size1 >
//   size2, size1 == 0, wrong hash length, wrong number of proof hashes);
// - kDataLoss: the proof is well formed but the computed root differs from the given one (the
//   proof, the leaf or the root has been altered, or they belong to different logs).

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace custos::audit::merkle {

inline constexpr size_t kHashSize = 32;

// SHA-256(0x00 || entry).
std::string LeafHash(std::string_view entry);
// SHA-256(0x01 || left || right).
std::string NodeHash(std::string_view left, std::string_view right);
// The root of the empty tree, SHA-256("").
std::string EmptyRoot();

// MTH over `leaf_hashes` (RFC 9162 section 2.1.1): EmptyRoot() for no leaves, the leaf hash itself
// for one, otherwise NodeHash(MTH(first k), MTH(rest)) with k the largest power of two smaller
// than the number of leaves. The leaf hashes are used as given (not checked for length).
std::string RootFromLeafHashes(const std::vector<std::string>& leaf_hashes);

// PATH(index, D[size]) of RFC 9162 section 2.1.3.1 over the first `size` of `leaf_hashes`,
// ordered from the leaf's sibling up to the root's child. kInvalidArgument unless
// index < size <= leaf_hashes.size().
absl::StatusOr<std::vector<std::string>> InclusionProof(const std::vector<std::string>& leaf_hashes,
                                                        uint64_t index, uint64_t size);

// PROOF(size1, D[size2]) of RFC 9162 section 2.1.4.1 over the first `size2` of `leaf_hashes`.
// Empty when size1 == size2. kInvalidArgument unless 0 < size1 <= size2 <= leaf_hashes.size().
absl::StatusOr<std::vector<std::string>> ConsistencyProof(
    const std::vector<std::string>& leaf_hashes, uint64_t size1, uint64_t size2);

// Checks that `leaf_hash` is the leaf at `index` of the tree of `size` leaves whose root is
// `root`, using `proof` (RFC 9162 section 2.1.3.2). OK, or an error saying what failed (see the
// error codes above).
absl::Status VerifyInclusion(uint64_t index, uint64_t size, std::string_view leaf_hash,
                             const std::vector<std::string>& proof, std::string_view root);

// Checks that the tree of `size1` leaves with root `root1` is a prefix of the tree of `size2`
// leaves with root `root2`, using `proof` (RFC 9162 section 2.1.4.2). OK, or an error saying what
// failed (see the conventions and error codes above).
absl::Status VerifyConsistency(uint64_t size1, uint64_t size2,
                               const std::vector<std::string>& proof, std::string_view root1,
                               std::string_view root2);

}  // namespace custos::audit::merkle
