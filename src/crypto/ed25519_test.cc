#include "crypto/ed25519.h"

#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "crypto/encoding.h"

namespace custos::crypto::ed25519 {
namespace {

std::string Hex(std::string_view hex) { return HexDecode(hex).value(); }

// RFC 8032 section 7.1, TEST 1.
const std::string kRfcSeed =
    Hex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
const std::string kRfcPublic =
    Hex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
const std::string kRfcSignature =
    Hex("e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
        "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b");

TEST(Ed25519Test, Rfc8032Test1) {
  EXPECT_EQ(PublicKeyFromSeed(kRfcSeed).value(), kRfcPublic);
  EXPECT_EQ(Sign(kRfcSeed, "").value(), kRfcSignature);
  EXPECT_TRUE(Verify(kRfcPublic, "", kRfcSignature));
}

TEST(Ed25519Test, RejectsAlteredMessageSignatureOrKey) {
  EXPECT_FALSE(Verify(kRfcPublic, "x", kRfcSignature));
  std::string bad_sig = kRfcSignature;
  bad_sig[10] ^= 0x01;
  EXPECT_FALSE(Verify(kRfcPublic, "", bad_sig));
  std::string bad_key = kRfcPublic;
  bad_key[0] ^= 0x01;
  EXPECT_FALSE(Verify(bad_key, "", kRfcSignature));
}

TEST(Ed25519Test, WrongSizesAreRefused) {
  EXPECT_FALSE(PublicKeyFromSeed(kRfcSeed.substr(1)).ok());
  EXPECT_FALSE(Sign(kRfcSeed + "x", "m").ok());
  EXPECT_FALSE(Verify(kRfcPublic.substr(1), "", kRfcSignature));
  EXPECT_FALSE(Verify(kRfcPublic, "", kRfcSignature.substr(1)));
}

TEST(Ed25519Test, GeneratedKeySignsAndVerifies) {
  SeededRandom random(7);
  std::string seed = GenerateSeed(random);
  ASSERT_EQ(seed.size(), kSeedSize);
  std::string public_key = PublicKeyFromSeed(seed).value();
  std::string signature = Sign(seed, "checkpoint body\n").value();
  EXPECT_TRUE(Verify(public_key, "checkpoint body\n", signature));
  EXPECT_FALSE(Verify(public_key, "checkpoint body!\n", signature));
  EXPECT_NE(GenerateSeed(random), seed);
}

}  // namespace
}  // namespace custos::crypto::ed25519
