#include "audit/merkle.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <optional>
#include <string>
#include <vector>

#include "crypto/encoding.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace custos::audit::merkle {
namespace {

using ::testing::HasSubstr;

std::string Hex(std::string_view bytes) { return crypto::HexEncode(bytes); }

std::string FromHex(std::string_view hex) {
  std::optional<std::string> bytes = crypto::HexDecode(hex);
  EXPECT_TRUE(bytes.has_value()) << hex;
  return bytes.value_or("");
}

// The classic Certificate Transparency test leaves the vectors are built from.
std::vector<std::string> CtLeafHashes() {
  std::vector<std::string> hashes;
  for (const char* hex : {"", "00", "10", "2021", "3031", "40414243", "5051525354555657",
                          "606162636465666768696a6b6c6d6e6f"}) {
    hashes.push_back(LeafHash(FromHex(hex)));
  }
  return hashes;
}

// Strict standard-alphabet, padded base64 (RFC 4648 section 4). crypto/ only has the URL-safe
// decoder, and the vectors use the standard alphabet.
std::optional<std::string> StdBase64Decode(std::string_view text) {
  static constexpr std::string_view kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  if (text.size() % 4 != 0) return std::nullopt;
  size_t pad = 0;
  while (pad < 2 && pad < text.size() && text[text.size() - 1 - pad] == '=') ++pad;
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < text.size() - pad; ++i) {
    size_t v = kAlphabet.find(text[i]);
    if (v == std::string_view::npos) return std::nullopt;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  if ((acc & ((1u << bits) - 1)) != 0) return std::nullopt;
  return out;
}

TEST(MerkleHashTest, KnownAnswersFromTheVectorReadme) {
  EXPECT_EQ(Hex(EmptyRoot()), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Hex(RootFromLeafHashes({})), Hex(EmptyRoot()));
  EXPECT_EQ(Hex(LeafHash("")), "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d");
  EXPECT_EQ(Hex(LeafHash("L123456")),
            "395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56");
  EXPECT_EQ(Hex(NodeHash("N123", "N456")),
            "aa217fe888e47007fa15edab33c2b492a722cb106c64667fc2b044444de66bbb");
  EXPECT_EQ(Hex(RootFromLeafHashes(CtLeafHashes())),
            "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328");
}

TEST(MerkleHashTest, RootSplitsAtLargestPowerOfTwoBelowSize) {
  std::vector<std::string> l = CtLeafHashes();
  l.resize(5);
  // MTH of 5 leaves = Node(MTH(0..3), leaf 4), not a balanced split.
  std::string left = NodeHash(NodeHash(l[0], l[1]), NodeHash(l[2], l[3]));
  EXPECT_EQ(Hex(RootFromLeafHashes(l)), Hex(NodeHash(left, l[4])));
  EXPECT_EQ(Hex(RootFromLeafHashes({l[0]})), Hex(l[0]));
}

struct VectorRun {
  int files = 0;
  int happy = 0;
  int proofs_cross_checked = 0;
};

std::optional<std::string> DecodeField(const nlohmann::json& j, const char* name) {
  if (!j.contains(name) || !j[name].is_string()) return std::nullopt;
  return StdBase64Decode(j[name].get<std::string>());
}

std::optional<std::vector<std::string>> DecodeProof(const nlohmann::json& j) {
  std::vector<std::string> proof;
  if (!j.contains("proof") || j["proof"].is_null()) return proof;
  if (!j["proof"].is_array()) return std::nullopt;
  for (const nlohmann::json& h : j["proof"]) {
    if (!h.is_string()) return std::nullopt;
    std::optional<std::string> bytes = StdBase64Decode(h.get<std::string>());
    if (!bytes) return std::nullopt;
    proof.push_back(*bytes);
  }
  return proof;
}

std::optional<uint64_t> UintField(const nlohmann::json& j, const char* name) {
  if (!j.contains(name) || !j[name].is_number_unsigned()) return std::nullopt;
  return j[name].get<uint64_t>();
}

// Runs one vector file; any malformed file is a test failure, never a skip.
void RunVectorFile(const std::filesystem::path& path, bool inclusion, VectorRun& run) {
  SCOPED_TRACE(path.string());
  std::ifstream in(path);
  ASSERT_TRUE(in.good()) << "cannot read";
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  ASSERT_FALSE(j.is_discarded()) << "malformed JSON";
  ASSERT_TRUE(j.is_object()) << "not a JSON object";
  ASSERT_TRUE(j.contains("wantErr") && j["wantErr"].is_boolean()) << "no boolean wantErr";
  const bool want_err = j["wantErr"].get<bool>();
  std::optional<std::vector<std::string>> proof = DecodeProof(j);
  ASSERT_TRUE(proof.has_value()) << "bad proof field";
  ++run.files;
  if (!want_err) ++run.happy;

  absl::Status st;
  if (inclusion) {
    std::optional<uint64_t> index = UintField(j, "leafIdx");
    std::optional<uint64_t> size = UintField(j, "treeSize");
    std::optional<std::string> leaf = DecodeField(j, "leafHash");
    std::optional<std::string> root = DecodeField(j, "root");
    ASSERT_TRUE(index && size && leaf && root) << "missing or malformed field";
    st = VerifyInclusion(*index, *size, *leaf, *proof, *root);
    // Where the vector's tree is a prefix of the CT leaves, our generator must give the same path.
    std::vector<std::string> ct = CtLeafHashes();
    if (!want_err && *size <= ct.size()) {
      ct.resize(*size);
      if (RootFromLeafHashes(ct) == *root) {
        absl::StatusOr<std::vector<std::string>> ours = InclusionProof(ct, *index, *size);
        ASSERT_TRUE(ours.ok()) << ours.status();
        EXPECT_EQ(*ours, *proof) << "generated inclusion proof differs from the vector";
        ++run.proofs_cross_checked;
      }
    }
  } else {
    std::optional<uint64_t> size1 = UintField(j, "size1");
    std::optional<uint64_t> size2 = UintField(j, "size2");
    std::optional<std::string> root1 = DecodeField(j, "root1");
    std::optional<std::string> root2 = DecodeField(j, "root2");
    ASSERT_TRUE(size1 && size2 && root1 && root2) << "missing or malformed field";
    st = VerifyConsistency(*size1, *size2, *proof, *root1, *root2);
    std::vector<std::string> ct = CtLeafHashes();
    if (!want_err && *size1 > 0 && *size2 <= ct.size()) {
      ct.resize(*size2);
      if (RootFromLeafHashes(ct) == *root2) {
        absl::StatusOr<std::vector<std::string>> ours = ConsistencyProof(ct, *size1, *size2);
        ASSERT_TRUE(ours.ok()) << ours.status();
        EXPECT_EQ(*ours, *proof) << "generated consistency proof differs from the vector";
        ++run.proofs_cross_checked;
      }
    }
  }
  const std::string desc = j.value("desc", std::string());
  if (want_err) {
    EXPECT_FALSE(st.ok()) << "accepted a vector that must be rejected: " << desc;
  } else {
    EXPECT_TRUE(st.ok()) << desc << ": " << st;
  }
}

// CUSTOS_SOURCE_DIR (set by ctest), else the tree this file was compiled from, so that running the
// test binary by hand tests the same vectors.
std::filesystem::path SourceDir() {
  if (const char* src = std::getenv("CUSTOS_SOURCE_DIR"); src != nullptr) return src;
  return std::filesystem::path(__FILE__).parent_path().parent_path().parent_path();
}

VectorRun RunVectorFolder(const std::string& name, bool inclusion) {
  VectorRun run;
  const std::filesystem::path dir = SourceDir() / "tests/testdata/rfc6962" / name;
  std::error_code ec;
  EXPECT_TRUE(std::filesystem::is_directory(dir, ec)) << dir << " is missing";
  if (!std::filesystem::is_directory(dir, ec)) return run;
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (e.is_regular_file() && e.path().extension() == ".json") files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  for (const std::filesystem::path& f : files) RunVectorFile(f, inclusion, run);
  EXPECT_EQ(run.files, static_cast<int>(files.size())) << "some vector files were not run";
  std::cout << "[ vectors  ] " << name << ": " << run.files << " files (" << run.happy
            << " must verify), " << run.proofs_cross_checked
            << " generated proofs matched the published ones\n";
  return run;
}

TEST(MerkleVectorsTest, EveryInclusionVector) {
  VectorRun run = RunVectorFolder("inclusion", /*inclusion=*/true);
  EXPECT_GT(run.files, 0);
  EXPECT_GT(run.happy, 0);
  EXPECT_GT(run.proofs_cross_checked, 0);
}

TEST(MerkleVectorsTest, EveryConsistencyVector) {
  VectorRun run = RunVectorFolder("consistency", /*inclusion=*/false);
  EXPECT_GT(run.files, 0);
  EXPECT_GT(run.happy, 0);
  EXPECT_GT(run.proofs_cross_checked, 0);
}

std::vector<std::string> GeneratedLeaves(int n) {
  std::vector<std::string> leaves;
  for (int i = 0; i < n; ++i) leaves.push_back(LeafHash("event " + std::to_string(i)));
  return leaves;
}

std::string FlipBit(std::string s, size_t bit) {
  s[bit / 8] = static_cast<char>(s[bit / 8] ^ (1 << (bit % 8)));
  return s;
}

constexpr int kMaxSize = 64;

TEST(MerkleRoundTripTest, EveryInclusionProofVerifiesAndAnyFlippedBitFails) {
  const std::vector<std::string> leaves = GeneratedLeaves(kMaxSize);
  for (uint64_t size = 1; size <= kMaxSize; ++size) {
    const std::string root =
        RootFromLeafHashes(std::vector<std::string>(leaves.begin(), leaves.begin() + size));
    for (uint64_t index = 0; index < size; ++index) {
      SCOPED_TRACE(testing::Message() << "index " << index << " size " << size);
      absl::StatusOr<std::vector<std::string>> proof = InclusionProof(leaves, index, size);
      ASSERT_TRUE(proof.ok()) << proof.status();
      EXPECT_TRUE(VerifyInclusion(index, size, leaves[index], *proof, root).ok());
      for (size_t i = 0; i < proof->size(); ++i) {
        std::vector<std::string> bad = *proof;
        bad[i] = FlipBit(bad[i], (i * 37 + index) % 256);
        EXPECT_FALSE(VerifyInclusion(index, size, leaves[index], bad, root).ok()) << "hash " << i;
      }
      EXPECT_FALSE(VerifyInclusion(index, size, FlipBit(leaves[index], 0), *proof, root).ok());
      if (size > 1) {
        const uint64_t other = (index + 1) % size;
        EXPECT_FALSE(VerifyInclusion(other, size, leaves[index], *proof, root).ok());
      }
    }
  }
}

TEST(MerkleRoundTripTest, EveryConsistencyProofVerifiesAndAnyFlippedBitFails) {
  const std::vector<std::string> leaves = GeneratedLeaves(kMaxSize);
  std::vector<std::string> roots(kMaxSize + 1);
  for (int size = 0; size <= kMaxSize; ++size) {
    roots[size] =
        RootFromLeafHashes(std::vector<std::string>(leaves.begin(), leaves.begin() + size));
  }
  for (uint64_t size2 = 1; size2 <= kMaxSize; ++size2) {
    for (uint64_t size1 = 1; size1 <= size2; ++size1) {
      SCOPED_TRACE(testing::Message() << "size1 " << size1 << " size2 " << size2);
      absl::StatusOr<std::vector<std::string>> proof = ConsistencyProof(leaves, size1, size2);
      ASSERT_TRUE(proof.ok()) << proof.status();
      EXPECT_TRUE(VerifyConsistency(size1, size2, *proof, roots[size1], roots[size2]).ok());
      for (size_t i = 0; i < proof->size(); ++i) {
        std::vector<std::string> bad = *proof;
        bad[i] = FlipBit(bad[i], (i * 53 + size1) % 256);
        EXPECT_FALSE(VerifyConsistency(size1, size2, bad, roots[size1], roots[size2]).ok())
            << "hash " << i;
      }
      EXPECT_FALSE(
          VerifyConsistency(size1, size2, *proof, FlipBit(roots[size1], 7), roots[size2]).ok());
      EXPECT_FALSE(
          VerifyConsistency(size1, size2, *proof, roots[size1], FlipBit(roots[size2], 7)).ok());
    }
  }
}

TEST(MerkleErrorsTest, VerifiersSayWhatFailed) {
  const std::vector<std::string> leaves = GeneratedLeaves(5);
  const std::string root = RootFromLeafHashes(leaves);

  absl::Status st = VerifyInclusion(5, 5, leaves[0], {}, root);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(st.message()), HasSubstr("index 5 is beyond tree size 5"));

  std::vector<std::string> proof = *InclusionProof(leaves, 0, 5);
  ASSERT_EQ(proof.size(), 3u);
  std::vector<std::string> longer = proof;
  longer.push_back(root);
  st = VerifyInclusion(0, 5, leaves[0], longer, root);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(st.message()), HasSubstr("proof has 4 hashes, expected 3"));

  st = VerifyInclusion(0, 5, leaves[1], proof, root);
  EXPECT_EQ(st.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(st.message()), HasSubstr("computed root differs"));

  st = VerifyInclusion(0, 5, leaves[0], proof, root.substr(1));
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(st.message()), HasSubstr("root has 31 bytes, expected 32"));

  st = VerifyConsistency(0, 5, {}, EmptyRoot(), root);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(st.message()), HasSubstr("size1 is 0"));

  st = VerifyConsistency(5, 4, {}, root, root);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(st.message()), HasSubstr("size1 5 is greater than size2 4"));

  st = VerifyConsistency(5, 5, {}, root, RootFromLeafHashes(GeneratedLeaves(4)));
  EXPECT_EQ(st.code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(VerifyConsistency(5, 5, {}, root, root).ok());

  const std::string root3 = RootFromLeafHashes(GeneratedLeaves(3));
  std::vector<std::string> cproof = *ConsistencyProof(leaves, 3, 5);
  cproof.pop_back();
  st = VerifyConsistency(3, 5, cproof, root3, root);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(st.message()), HasSubstr("proof has 3 hashes, expected 4"));
}

TEST(MerkleErrorsTest, GeneratorsRejectBadSizes) {
  const std::vector<std::string> leaves = GeneratedLeaves(4);
  EXPECT_EQ(InclusionProof(leaves, 4, 4).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(InclusionProof(leaves, 0, 5).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(InclusionProof(leaves, 0, 0).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ConsistencyProof(leaves, 0, 4).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ConsistencyProof(leaves, 3, 2).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ConsistencyProof(leaves, 2, 5).status().code(), absl::StatusCode::kInvalidArgument);
  absl::StatusOr<std::vector<std::string>> same = ConsistencyProof(leaves, 4, 4);
  ASSERT_TRUE(same.ok());
  EXPECT_TRUE(same->empty());
}

}  // namespace
}  // namespace custos::audit::merkle
