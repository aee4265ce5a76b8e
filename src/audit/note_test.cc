#include "audit/note.h"

#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "crypto/ed25519.h"
#include "crypto/random.h"

namespace custos::audit::note {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// The C2SP signed-note example (tests/testdata/rfc6962/README.md).
constexpr std::string_view kExampleVkey =
    "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k";
constexpr std::string_view kExampleBody = "This is an example message.\n";
constexpr std::string_view kExampleSigLine =
    "\xe2\x80\x94 example.com/foo "
    "Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM="
    "\n";

std::string ExampleNote() {
  return std::string(kExampleBody) + "\n" + std::string(kExampleSigLine);
}

VerifierKey ExampleKey() { return ParseVerifierKey(kExampleVkey).value(); }

TEST(NoteTest, ExampleVerifierKeyParsesAndRoundTrips) {
  VerifierKey key = ExampleKey();
  EXPECT_EQ(key.name, "example.com/foo");
  EXPECT_EQ(key.key_id, 0x530d903au);
  EXPECT_EQ(KeyId(key.name, key.public_key), 0x530d903au);
  EXPECT_EQ(FormatVerifierKey(key.name, key.public_key).value(), kExampleVkey);
}

TEST(NoteTest, ExampleNoteVerifies) {
  absl::StatusOr<OpenedNote> opened = Open(ExampleNote(), {ExampleKey()});
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(opened->body, kExampleBody);
  EXPECT_THAT(opened->signed_by, ElementsAre("example.com/foo"));
}

TEST(NoteTest, FlippedBodyByteFails) {
  std::string note = ExampleNote();
  note[0] ^= 0x01;
  EXPECT_EQ(Open(note, {ExampleKey()}).status().code(), absl::StatusCode::kUnauthenticated);
}

TEST(NoteTest, FlippedSignatureByteFails) {
  std::string note = ExampleNote();
  // Change one base64 character well inside the signature (after the 4-byte key id).
  size_t pos = note.size() - 20;
  note[pos] = note[pos] == 'A' ? 'B' : 'A';
  absl::Status st = Open(note, {ExampleKey()}).status();
  EXPECT_EQ(st.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(std::string(st.message()), HasSubstr("does not verify"));
}

TEST(NoteTest, RejectsVerifierKeyWithWrongId) {
  absl::Status st =
      ParseVerifierKey("example.com/foo+530d903b+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k")
          .status();
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(st.message()), HasSubstr("key id does not match"));
}

TEST(NoteTest, RejectsMalformedVerifierKeys) {
  for (std::string_view vkey : {
           "example.com/foo",
           "example.com/foo+530d903a",
           "+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
           "example.com/foo+530d903+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
           "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2",
           "example.com/foo+530d903a+AkyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k=",
           "example com+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
       }) {
    EXPECT_EQ(ParseVerifierKey(vkey).status().code(), absl::StatusCode::kInvalidArgument) << vkey;
  }
}

TEST(NoteTest, SignThenOpenRoundTrip) {
  crypto::SeededRandom random(42);
  std::string seed = crypto::ed25519::GenerateSeed(random);
  std::string public_key = crypto::ed25519::PublicKeyFromSeed(seed).value();
  VerifierKey key =
      ParseVerifierKey(FormatVerifierKey("log.example/t/acme", public_key).value()).value();

  std::string body = "log.example/t/acme\n3\nAAAA\n\nwith a blank line inside\n";
  std::string note = Sign(body, "log.example/t/acme", seed).value();
  EXPECT_EQ(note.substr(0, body.size() + 1), body + "\n");
  absl::StatusOr<OpenedNote> opened = Open(note, {ExampleKey(), key});
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(opened->body, body);
  EXPECT_THAT(opened->signed_by, ElementsAre("log.example/t/acme"));
}

TEST(NoteTest, SignerKeyRoundTrips) {
  crypto::SeededRandom random(5);
  std::string seed = crypto::ed25519::GenerateSeed(random);
  std::string skey = FormatSignerKey("log.example", seed).value();
  EXPECT_THAT(skey, ::testing::StartsWith("PRIVATE+KEY+log.example+"));
  SignerKey signer = ParseSignerKey(skey).value();
  EXPECT_EQ(signer.name, "log.example");
  EXPECT_EQ(signer.seed, seed);
  std::string public_key = crypto::ed25519::PublicKeyFromSeed(seed).value();
  EXPECT_EQ(signer.key_id, KeyId("log.example", public_key));
  EXPECT_EQ(ParseSignerKey(skey.substr(8)).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(NoteTest, NoteSignedByAnotherKeyIsUnauthenticated) {
  crypto::SeededRandom random(1);
  std::string seed = crypto::ed25519::GenerateSeed(random);
  // Same name as the example key, different key: a different key id, so it is ignored.
  std::string note = Sign(kExampleBody, "example.com/foo", seed).value();
  absl::Status st = Open(note, {ExampleKey()}).status();
  EXPECT_EQ(st.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(std::string(st.message()), HasSubstr("no signature by a known key"));
  EXPECT_EQ(Open(ExampleNote(), {}).status().code(), absl::StatusCode::kUnauthenticated);
}

TEST(NoteTest, UnknownSignersAreIgnored) {
  crypto::SeededRandom random(2);
  std::string other =
      Sign(kExampleBody, "witness.example", crypto::ed25519::GenerateSeed(random)).value();
  std::string other_line = other.substr(kExampleBody.size() + 1);
  std::string note = ExampleNote() + other_line;
  absl::StatusOr<OpenedNote> opened = Open(note, {ExampleKey()});
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_THAT(opened->signed_by, ElementsAre("example.com/foo"));
}

TEST(NoteTest, RejectsMalformedNotes) {
  const std::string body(kExampleBody);
  const std::string sig(kExampleSigLine);
  struct Case {
    std::string note;
    std::string message;
  };
  for (const Case& c : std::vector<Case>{
           {body + sig, "no blank line"},
           {body + "\n", "no signature lines"},
           {body + "\n" + sig.substr(0, sig.size() - 1), "does not end in a newline"},
           {body + "\n-- example.com/foo AAAA\n", "em dash"},
           {body + "\n" + sig.substr(0, sig.size() - 2) + "!\n", "not valid base64"},
           {body + "\n\xe2\x80\x94 example.com/foo\n", "has no signature"},
           {body + "\n\xe2\x80\x94 example.com/foo AAAA\n", "too short"},
           {body + "\n" + sig + sig, "two signatures"},
       }) {
    absl::Status st = Open(c.note, {ExampleKey()}).status();
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << c.note;
    EXPECT_THAT(std::string(st.message()), HasSubstr(c.message)) << c.note;
  }
  std::string many = body + "\n";
  for (int i = 0; i < 101; ++i) many += "\xe2\x80\x94 other.example AAAAAAAA\n";
  EXPECT_THAT(std::string(Open(many, {ExampleKey()}).status().message()),
              HasSubstr("more than 100"));
}

TEST(NoteTest, SignRejectsBadInput) {
  crypto::SeededRandom random(3);
  std::string seed = crypto::ed25519::GenerateSeed(random);
  absl::Status st = Sign("no newline", "log.example", seed).status();
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(st.message()), HasSubstr("newline"));
  EXPECT_FALSE(Sign("", "log.example", seed).ok());
  EXPECT_FALSE(Sign("x\n", "a+b", seed).ok());
  EXPECT_FALSE(Sign("x\n", "a b", seed).ok());
  EXPECT_FALSE(Sign("x\n", "", seed).ok());
  EXPECT_FALSE(Sign("x\n", "log.example", seed.substr(1)).ok());
}

TEST(NoteTest, KeyNameRules) {
  EXPECT_TRUE(IsValidKeyName("example.com/foo"));
  EXPECT_TRUE(IsValidKeyName("caf\xc3\xa9.example"));
  EXPECT_FALSE(IsValidKeyName(""));
  EXPECT_FALSE(IsValidKeyName("a+b"));
  EXPECT_FALSE(IsValidKeyName("a\tb"));
  EXPECT_FALSE(
      IsValidKeyName("a\xc2\xa0"
                     "b"));  // U+00A0 NO-BREAK SPACE
  EXPECT_FALSE(
      IsValidKeyName("a\xe3\x80\x80"
                     "b"));               // U+3000 IDEOGRAPHIC SPACE
  EXPECT_FALSE(IsValidKeyName("a\xff"));  // not UTF-8
}

}  // namespace
}  // namespace custos::audit::note
