#include "audit/merkle.h"

#include <bit>

#include "crypto/hash.h"
#include "fmt/format.h"

namespace custos::audit::merkle {
namespace {

// Largest power of two strictly smaller than n (n >= 2): where MTH splits a tree of n leaves.
uint64_t SplitPoint(uint64_t n) { return std::bit_floor(n - 1); }

std::string RootOfRange(const std::vector<std::string>& leaves, uint64_t begin, uint64_t end) {
  const uint64_t n = end - begin;
  if (n == 0) return EmptyRoot();
  if (n == 1) return leaves[begin];
  const uint64_t k = SplitPoint(n);
  return NodeHash(RootOfRange(leaves, begin, begin + k), RootOfRange(leaves, begin + k, end));
}

// PATH(m, D[begin:end]); appends to `out` from the bottom up.
void AppendPath(const std::vector<std::string>& leaves, uint64_t m, uint64_t begin, uint64_t end,
                std::vector<std::string>& out) {
  const uint64_t n = end - begin;
  if (n <= 1) return;
  const uint64_t k = SplitPoint(n);
  if (m < k) {
    AppendPath(leaves, m, begin, begin + k, out);
    out.push_back(RootOfRange(leaves, begin + k, end));
  } else {
    AppendPath(leaves, m - k, begin + k, end, out);
    out.push_back(RootOfRange(leaves, begin, begin + k));
  }
}

// SUBPROOF(m, D[begin:end], b); appends to `out` from the bottom up.
void AppendSubproof(const std::vector<std::string>& leaves, uint64_t m, uint64_t begin,
                    uint64_t end, bool b, std::vector<std::string>& out) {
  const uint64_t n = end - begin;
  if (m == n) {
    // The old tree is this whole subtree: the verifier knows its root only at the top level.
    if (!b) out.push_back(RootOfRange(leaves, begin, end));
    return;
  }
  const uint64_t k = SplitPoint(n);
  if (m <= k) {
    AppendSubproof(leaves, m, begin, begin + k, b, out);
    out.push_back(RootOfRange(leaves, begin + k, end));
  } else {
    AppendSubproof(leaves, m - k, begin + k, end, false, out);
    out.push_back(RootOfRange(leaves, begin, begin + k));
  }
}

// Number of hashes in PATH(index, D[size]): the levels where the paths of `index` and of the last
// leaf differ ("inner"), plus one per left sibling above them on the right border ("border").
struct PathShape {
  uint64_t inner;
  uint64_t border;
};
PathShape ShapeOfPath(uint64_t index, uint64_t size) {
  const uint64_t inner = std::bit_width(index ^ (size - 1));
  const uint64_t border = std::popcount(index >> inner);
  return {inner, border};
}

absl::Status CheckHashSize(std::string_view what, std::string_view hash) {
  if (hash.size() != kHashSize) {
    return absl::InvalidArgumentError(
        fmt::format("{} has {} bytes, expected {}", what, hash.size(), kHashSize));
  }
  return absl::OkStatus();
}

absl::Status CheckProofHashes(const std::vector<std::string>& proof) {
  for (size_t i = 0; i < proof.size(); ++i) {
    absl::Status st = CheckHashSize(fmt::format("proof hash {}", i), proof[i]);
    if (!st.ok()) return st;
  }
  return absl::OkStatus();
}

absl::Status CheckProofLength(const std::vector<std::string>& proof, uint64_t expected) {
  if (proof.size() != expected) {
    return absl::InvalidArgumentError(
        fmt::format("proof has {} hashes, expected {}", proof.size(), expected));
  }
  return absl::OkStatus();
}

}  // namespace

std::string LeafHash(std::string_view entry) {
  std::string data(1, '\x00');
  data.append(entry);
  return crypto::Sha256(data);
}

std::string NodeHash(std::string_view left, std::string_view right) {
  std::string data(1, '\x01');
  data.append(left);
  data.append(right);
  return crypto::Sha256(data);
}

std::string EmptyRoot() { return crypto::Sha256(""); }

std::string RootFromLeafHashes(const std::vector<std::string>& leaf_hashes) {
  return RootOfRange(leaf_hashes, 0, leaf_hashes.size());
}

absl::StatusOr<std::vector<std::string>> InclusionProof(const std::vector<std::string>& leaf_hashes,
                                                        uint64_t index, uint64_t size) {
  if (size > leaf_hashes.size()) {
    return absl::InvalidArgumentError(
        fmt::format("tree size {} exceeds the {} leaves given", size, leaf_hashes.size()));
  }
  if (index >= size) {
    return absl::InvalidArgumentError(fmt::format("index {} is beyond tree size {}", index, size));
  }
  std::vector<std::string> proof;
  AppendPath(leaf_hashes, index, 0, size, proof);
  return proof;
}

absl::StatusOr<std::vector<std::string>> ConsistencyProof(
    const std::vector<std::string>& leaf_hashes, uint64_t size1, uint64_t size2) {
  if (size2 > leaf_hashes.size()) {
    return absl::InvalidArgumentError(
        fmt::format("tree size {} exceeds the {} leaves given", size2, leaf_hashes.size()));
  }
  if (size1 > size2) {
    return absl::InvalidArgumentError(
        fmt::format("size1 {} is greater than size2 {}", size1, size2));
  }
  if (size1 == 0) {
    return absl::InvalidArgumentError("size1 is 0: a tree of size 0 has no consistency proof");
  }
  std::vector<std::string> proof;
  AppendSubproof(leaf_hashes, size1, 0, size2, true, proof);
  return proof;
}

absl::Status VerifyInclusion(uint64_t index, uint64_t size, std::string_view leaf_hash,
                             const std::vector<std::string>& proof, std::string_view root) {
  if (index >= size) {
    return absl::InvalidArgumentError(fmt::format("index {} is beyond tree size {}", index, size));
  }
  if (absl::Status st = CheckHashSize("leaf hash", leaf_hash); !st.ok()) return st;
  if (absl::Status st = CheckHashSize("root", root); !st.ok()) return st;
  if (absl::Status st = CheckProofHashes(proof); !st.ok()) return st;
  const PathShape shape = ShapeOfPath(index, size);
  if (absl::Status st = CheckProofLength(proof, shape.inner + shape.border); !st.ok()) return st;

  // RFC 9162 section 2.1.3.2, step by step.
  uint64_t fn = index;
  uint64_t sn = size - 1;
  std::string r(leaf_hash);
  for (const std::string& p : proof) {
    if (sn == 0) return absl::InvalidArgumentError("proof is longer than the path to the root");
    if ((fn & 1) != 0 || fn == sn) {
      r = NodeHash(p, r);
      while ((fn & 1) == 0 && fn != 0) {
        fn >>= 1;
        sn >>= 1;
      }
    } else {
      r = NodeHash(r, p);
    }
    fn >>= 1;
    sn >>= 1;
  }
  if (sn != 0) return absl::InvalidArgumentError("proof is shorter than the path to the root");
  if (r != root) {
    return absl::DataLossError(fmt::format(
        "computed root differs from the given root (leaf {} of tree size {})", index, size));
  }
  return absl::OkStatus();
}

absl::Status VerifyConsistency(uint64_t size1, uint64_t size2,
                               const std::vector<std::string>& proof, std::string_view root1,
                               std::string_view root2) {
  if (size1 > size2) {
    return absl::InvalidArgumentError(
        fmt::format("size1 {} is greater than size2 {}", size1, size2));
  }
  if (size1 == 0) {
    return absl::InvalidArgumentError(
        "size1 is 0: consistency with the empty tree is not proven by a proof");
  }
  if (size1 == size2) {
    if (!proof.empty()) {
      return absl::InvalidArgumentError(
          fmt::format("proof has {} hashes, expected 0 for equal sizes", proof.size()));
    }
    if (root1 != root2) {
      return absl::DataLossError(fmt::format("roots differ for equal tree sizes {}", size1));
    }
    return absl::OkStatus();
  }
  if (absl::Status st = CheckHashSize("root1", root1); !st.ok()) return st;
  if (absl::Status st = CheckHashSize("root2", root2); !st.ok()) return st;
  if (absl::Status st = CheckProofHashes(proof); !st.ok()) return st;

  // The proof is the suffix of PATH(size1 - 1, D[size2]) above the largest complete subtree the
  // old tree ends with, preceded by that subtree's root unless it is the whole old tree.
  const uint64_t shift = std::countr_zero(size1);
  const bool size1_is_power_of_two = std::has_single_bit(size1);
  PathShape shape = ShapeOfPath(size1 - 1, size2);
  const uint64_t expected = (size1_is_power_of_two ? 0 : 1) + (shape.inner - shift) + shape.border;
  if (absl::Status st = CheckProofLength(proof, expected); !st.ok()) return st;

  // RFC 9162 section 2.1.4.2, step by step.
  std::vector<std::string_view> path;
  path.reserve(proof.size() + 1);
  if (size1_is_power_of_two) path.push_back(root1);
  for (const std::string& c : proof) path.push_back(c);

  uint64_t fn = size1 - 1;
  uint64_t sn = size2 - 1;
  while ((fn & 1) != 0) {
    fn >>= 1;
    sn >>= 1;
  }
  std::string fr(path[0]);
  std::string sr(path[0]);
  for (size_t i = 1; i < path.size(); ++i) {
    const std::string_view c = path[i];
    if (sn == 0) return absl::InvalidArgumentError("proof is longer than the path to the root");
    if ((fn & 1) != 0 || fn == sn) {
      fr = NodeHash(c, fr);
      sr = NodeHash(c, sr);
      while ((fn & 1) == 0 && fn != 0) {
        fn >>= 1;
        sn >>= 1;
      }
    } else {
      sr = NodeHash(sr, c);
    }
    fn >>= 1;
    sn >>= 1;
  }
  if (sn != 0) return absl::InvalidArgumentError("proof is shorter than the path to the root");
  if (fr != root1) {
    return absl::DataLossError(
        fmt::format("computed root of tree size {} differs from root1", size1));
  }
  if (sr != root2) {
    return absl::DataLossError(
        fmt::format("computed root of tree size {} differs from root2", size2));
  }
  return absl::OkStatus();
}

}  // namespace custos::audit::merkle
