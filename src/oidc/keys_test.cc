#include "oidc/keys.h"

#include <algorithm>
#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "store/sqlite/temp_sqlite_store.h"
#include "support/jwk.h"

namespace custos::oidc {
namespace {

using ::testing::Contains;
using ::testing::Not;

constexpr absl::Duration kPublishAhead = absl::Hours(24);
constexpr absl::Duration kKeepAfter = absl::Hours(48);
constexpr absl::Duration kRefresh = absl::Seconds(30);

class KeyManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto temp = store::TempSqliteStore::Open();
    ASSERT_TRUE(temp.ok()) << temp.status();
    temp_ = *std::move(temp);
    store_ = &temp_->store();
    acme_ = AddTenant("acme");
    globex_ = AddTenant("globex");
    keys_ = NewManager(*sealer_);
    admin_.actor = {"00Tacmeadmin00000001", "ApiToken", "acme-admin", "Acme admin"};
    admin_.request_id = "req-rotate";
  }

  std::unique_ptr<KeyManager> NewManager(const crypto::Sealer& sealer) {
    return std::make_unique<KeyManager>(
        *store_, sealer, clock_, random_,
        KeyOptions{.publish_ahead = kPublishAhead, .keep_after = kKeepAfter, .refresh = kRefresh});
  }

  TenantId AddTenant(const std::string& name) {
    store::TenantRecord tenant{TenantId(random_.Id(kTenantIdPrefix)), name, clock_.Now()};
    EXPECT_TRUE(
        store_->Write([&](store::Transaction& tx) { return tx.Tenants().Insert(tenant); }).ok());
    return tenant.id;
  }

  std::vector<store::OidcKeyRecord> StoredKeys(const TenantId& tenant) {
    absl::StatusOr<std::vector<store::OidcKeyRecord>> keys = store::ReadResult(
        *store_, [&](store::Transaction& tx) { return tx.Oidc().ListKeys(tenant); });
    EXPECT_TRUE(keys.ok()) << keys.status();
    return keys.ok() ? *keys : std::vector<store::OidcKeyRecord>{};
  }

  // The tenant's events of `type`, oldest first, as JSON.
  std::vector<Json> Events(const TenantId& tenant, std::string_view type) {
    absl::StatusOr<std::vector<store::EventRecord>> events = store::ReadResult(
        *store_, [&](store::Transaction& tx) { return tx.Events().Query(tenant, {}); });
    EXPECT_TRUE(events.ok()) << events.status();
    std::vector<Json> out;
    if (!events.ok()) return out;
    for (const store::EventRecord& e : *events) {
      if (e.event_type == type) out.push_back(Json::parse(e.json));
    }
    return out;
  }

  std::string ActiveKid(KeyManager& keys, const TenantId& tenant,
                        std::string_view alg = kAlgEs256) {
    absl::StatusOr<std::shared_ptr<const ActiveKey>> active = keys.Active(tenant, alg);
    EXPECT_TRUE(active.ok()) << active.status();
    return active.ok() ? (*active)->kid : "";
  }

  std::vector<std::string> JwksKids(KeyManager& keys, const TenantId& tenant) {
    absl::StatusOr<Json> jwks = keys.Jwks(tenant);
    EXPECT_TRUE(jwks.ok()) << jwks.status();
    std::vector<std::string> kids;
    if (!jwks.ok()) return kids;
    for (const Json& key : (*jwks)["keys"]) kids.push_back(key["kid"].get<std::string>());
    return kids;
  }

  FakeClock clock_;
  crypto::SeededRandom random_{7};
  std::unique_ptr<crypto::Sealer> sealer_ = crypto::Sealer::FromKey(std::string(32, 'k'));
  std::unique_ptr<store::TempSqliteStore> temp_;
  store::Store* store_ = nullptr;
  TenantId acme_;
  TenantId globex_;
  std::unique_ptr<KeyManager> keys_;
  audit::RequestContext admin_;
};

TEST_F(KeyManagerTest, FirstUseMakesOneKeyPerAlgorithmWithEvents) {
  EXPECT_TRUE(StoredKeys(acme_).empty());
  absl::StatusOr<std::shared_ptr<const ActiveKey>> es = keys_->Active(acme_);
  ASSERT_TRUE(es.ok()) << es.status();
  EXPECT_EQ((*es)->key.alg(), kAlgEs256);
  absl::StatusOr<std::shared_ptr<const ActiveKey>> ed = keys_->Active(acme_, kAlgEdDsa);
  ASSERT_TRUE(ed.ok()) << ed.status();
  EXPECT_EQ((*ed)->key.alg(), kAlgEdDsa);

  std::vector<store::OidcKeyRecord> stored = StoredKeys(acme_);
  ASSERT_EQ(stored.size(), 2u);
  std::vector<Json> created = Events(acme_, "oauth2.key.create");
  ASSERT_EQ(created.size(), 2u);
  std::vector<std::string> event_kids;
  for (const Json& e : created) {
    EXPECT_EQ(e["actor"]["type"], "SystemPrincipal");
    event_kids.push_back(e["target"][0]["id"].get<std::string>());
  }
  EXPECT_THAT(event_kids, Contains((*es)->kid));
  EXPECT_THAT(event_kids, Contains((*ed)->kid));

  // Later calls make nothing more; other tenants are untouched.
  ASSERT_TRUE(keys_->Active(acme_).ok());
  ASSERT_TRUE(keys_->Jwks(acme_).ok());
  EXPECT_EQ(StoredKeys(acme_).size(), 2u);
  EXPECT_EQ(Events(acme_, "oauth2.key.create").size(), 2u);
  EXPECT_TRUE(StoredKeys(globex_).empty());
  EXPECT_TRUE(Events(globex_, "oauth2.key.create").empty());
}

TEST_F(KeyManagerTest, RefusesUnknownAlgorithms) {
  EXPECT_EQ(keys_->Active(acme_, "HS256").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(keys_->Rotate(admin_, acme_, "RS256").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(StoredKeys(acme_).empty());
}

TEST_F(KeyManagerTest, JwksListsPublicKeysOnly) {
  const std::string es_kid = ActiveKid(*keys_, acme_);
  const std::string ed_kid = ActiveKid(*keys_, acme_, kAlgEdDsa);
  absl::StatusOr<Json> jwks = keys_->Jwks(acme_);
  ASSERT_TRUE(jwks.ok()) << jwks.status();
  ASSERT_EQ((*jwks)["keys"].size(), 2u);
  std::vector<std::string> kids;
  for (const Json& jwk : (*jwks)["keys"]) {
    SCOPED_TRACE(jwk.dump());
    EXPECT_FALSE(support::HasPrivateKeyMembers(jwk));
    EXPECT_EQ(jwk["use"], "sig");
    absl::StatusOr<support::PublicJwk> parsed = support::ParsePublicJwk(jwk);
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    EXPECT_EQ(jwk["alg"], support::JwsAlgorithmFor(*parsed));
    kids.push_back(jwk["kid"].get<std::string>());
  }
  EXPECT_THAT(kids, Contains(es_kid));
  EXPECT_THAT(kids, Contains(ed_kid));
}

TEST_F(KeyManagerTest, JwksMakesTheFirstKeysToo) {
  EXPECT_EQ(JwksKids(*keys_, acme_).size(), 2u);
  EXPECT_EQ(Events(acme_, "oauth2.key.create").size(), 2u);
}

TEST_F(KeyManagerTest, ActiveIsCachedAndSignsForThePublishedKey) {
  absl::StatusOr<std::shared_ptr<const ActiveKey>> first = keys_->Active(acme_);
  absl::StatusOr<std::shared_ptr<const ActiveKey>> second = keys_->Active(acme_);
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_EQ(first->get(), second->get());
  // Still the same object after the cache was refreshed from the store.
  clock_.Advance(kRefresh + absl::Seconds(1));
  absl::StatusOr<std::shared_ptr<const ActiveKey>> third = keys_->Active(acme_);
  ASSERT_TRUE(third.ok());
  EXPECT_EQ(first->get(), third->get());

  for (std::string_view alg : {kAlgEs256, kAlgEdDsa}) {
    absl::StatusOr<std::shared_ptr<const ActiveKey>> active = keys_->Active(acme_, alg);
    ASSERT_TRUE(active.ok());
    absl::StatusOr<std::string> jwt =
        SignJwt((*active)->key, (*active)->kid, "JWT", Json{{"sub", "00u1"}});
    ASSERT_TRUE(jwt.ok());
    absl::StatusOr<VerifiedJwt> verified = VerifyJwt(
        *jwt, [&](const Json& header) { return keys_->PublicKey(acme_, header.value("kid", "")); });
    EXPECT_TRUE(verified.ok()) << verified.status();
  }
}

TEST_F(KeyManagerTest, PublicKeyFindsPublishedKeysOfTheTenantByKid) {
  absl::StatusOr<std::shared_ptr<const ActiveKey>> active = keys_->Active(acme_);
  ASSERT_TRUE(active.ok());
  absl::StatusOr<support::PublicJwk> found = keys_->PublicKey(acme_, (*active)->kid);
  ASSERT_TRUE(found.ok()) << found.status();
  absl::StatusOr<support::PublicJwk> expected =
      support::ParsePublicJwk((*active)->key.PublicJwk((*active)->kid));
  ASSERT_TRUE(expected.ok());
  EXPECT_EQ(support::Thumbprint(*found), support::Thumbprint(*expected));

  EXPECT_EQ(keys_->PublicKey(acme_, "no-such-kid").status().code(), absl::StatusCode::kNotFound);
  // Another tenant's kid is not this tenant's key.
  ASSERT_TRUE(keys_->Active(globex_).ok());
  EXPECT_EQ(keys_->PublicKey(globex_, (*active)->kid).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(KeyManagerTest, RotatePublishesAtOnceAndSignsAfterPublishAhead) {
  const std::string old_kid = ActiveKid(*keys_, acme_);
  const std::string ed_kid = ActiveKid(*keys_, acme_, kAlgEdDsa);
  clock_.Advance(absl::Hours(1));
  absl::StatusOr<store::OidcKeyRecord> rotated = keys_->Rotate(admin_, acme_, kAlgEs256);
  ASSERT_TRUE(rotated.ok()) << rotated.status();
  EXPECT_EQ(rotated->alg, kAlgEs256);
  EXPECT_NE(rotated->kid, old_kid);
  EXPECT_EQ(rotated->activates, clock_.Now() + kPublishAhead);

  // Published at once, newest first; the old key keeps signing.
  std::vector<std::string> kids = JwksKids(*keys_, acme_);
  ASSERT_EQ(kids.size(), 3u);
  EXPECT_EQ(kids.front(), rotated->kid);
  EXPECT_THAT(kids, Contains(old_kid));
  EXPECT_TRUE(keys_->PublicKey(acme_, rotated->kid).ok());
  EXPECT_EQ(ActiveKid(*keys_, acme_), old_kid);

  clock_.Advance(kPublishAhead - absl::Seconds(1));
  EXPECT_EQ(ActiveKid(*keys_, acme_), old_kid);
  clock_.Advance(absl::Seconds(1));
  EXPECT_EQ(ActiveKid(*keys_, acme_), rotated->kid);
  // The other algorithm is not rotated.
  EXPECT_EQ(ActiveKid(*keys_, acme_, kAlgEdDsa), ed_kid);

  std::vector<Json> events = Events(acme_, "oauth2.key.rotate");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0]["actor"]["id"], admin_.actor.id);
  EXPECT_EQ(events[0]["target"][0]["id"], rotated->kid);
  EXPECT_EQ(events[0]["debugContext"]["debugData"]["retiredKids"], old_kid);
}

TEST_F(KeyManagerTest, OldKeyLeavesTheJwksKeepAfterItRetires) {
  const std::string old_kid = ActiveKid(*keys_, acme_);
  absl::StatusOr<store::OidcKeyRecord> rotated = keys_->Rotate(admin_, acme_, kAlgEs256);
  ASSERT_TRUE(rotated.ok()) << rotated.status();

  clock_.Advance(kPublishAhead + kKeepAfter - absl::Seconds(1));
  EXPECT_THAT(JwksKids(*keys_, acme_), Contains(old_kid));
  EXPECT_TRUE(keys_->PublicKey(acme_, old_kid).ok());
  clock_.Advance(absl::Seconds(1));
  EXPECT_THAT(JwksKids(*keys_, acme_), Not(Contains(old_kid)));
  EXPECT_EQ(keys_->PublicKey(acme_, old_kid).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(JwksKids(*keys_, acme_).size(), 2u);
  EXPECT_EQ(ActiveKid(*keys_, acme_), rotated->kid);
}

TEST_F(KeyManagerTest, RotatingTwiceRetiresThePendingKeyWhenTheNewestActivates) {
  const std::string first = ActiveKid(*keys_, acme_);
  absl::StatusOr<store::OidcKeyRecord> second = keys_->Rotate(admin_, acme_, kAlgEs256);
  ASSERT_TRUE(second.ok());
  clock_.Advance(absl::Hours(1));
  absl::StatusOr<store::OidcKeyRecord> third = keys_->Rotate(admin_, acme_, kAlgEs256);
  ASSERT_TRUE(third.ok());

  EXPECT_EQ(ActiveKid(*keys_, acme_), first);
  clock_.Advance(kPublishAhead - absl::Hours(1));
  EXPECT_EQ(ActiveKid(*keys_, acme_), second->kid);
  clock_.Advance(absl::Hours(1));
  EXPECT_EQ(ActiveKid(*keys_, acme_), third->kid);
}

TEST_F(KeyManagerTest, PrivateKeysAreSealedAtRest) {
  absl::StatusOr<std::shared_ptr<const ActiveKey>> es = keys_->Active(acme_);
  absl::StatusOr<std::shared_ptr<const ActiveKey>> ed = keys_->Active(acme_, kAlgEdDsa);
  ASSERT_TRUE(es.ok() && ed.ok());
  for (const store::OidcKeyRecord& record : StoredKeys(acme_)) {
    const std::shared_ptr<const ActiveKey>& key = record.alg == kAlgEs256 ? *es : *ed;
    ASSERT_EQ(record.kid, key->kid);
    const std::string private_bytes = key->key.PrivateBytes();
    ASSERT_FALSE(private_bytes.empty());
    EXPECT_NE(record.sealed_private, private_bytes);
    EXPECT_EQ(record.sealed_private.find(private_bytes), std::string::npos);
    Json jwk = Json::parse(record.public_jwk);
    EXPECT_FALSE(support::HasPrivateKeyMembers(jwk));
  }

  // Only the sealing key opens them.
  std::unique_ptr<crypto::Sealer> other = crypto::Sealer::FromKey(std::string(32, 'x'));
  std::unique_ptr<KeyManager> stranger = NewManager(*other);
  EXPECT_EQ(stranger->Active(acme_).status().code(), absl::StatusCode::kDataLoss);
  std::unique_ptr<KeyManager> same = NewManager(*sealer_);
  absl::StatusOr<std::shared_ptr<const ActiveKey>> reopened = same->Active(acme_);
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  EXPECT_EQ((*reopened)->key.PrivateBytes(), (*es)->key.PrivateBytes());
}

TEST_F(KeyManagerTest, SealedKeyCopiedToAnotherTenantDoesNotOpen) {
  ASSERT_TRUE(keys_->Active(acme_).ok());
  ASSERT_TRUE(store_
                  ->Write([&](store::Transaction& tx) -> absl::Status {
                    absl::StatusOr<std::vector<store::OidcKeyRecord>> keys =
                        tx.Oidc().ListKeys(acme_);
                    if (!keys.ok()) return keys.status();
                    for (store::OidcKeyRecord key : *keys) {
                      key.tenant_id = globex_;
                      absl::Status st = tx.Oidc().InsertKey(key);
                      if (!st.ok()) return st;
                    }
                    return absl::OkStatus();
                  })
                  .ok());
  EXPECT_EQ(keys_->Active(globex_).status().code(), absl::StatusCode::kDataLoss);
}

TEST_F(KeyManagerTest, SecondManagerPicksUpARotationAfterRefresh) {
  std::unique_ptr<KeyManager> other = NewManager(*sealer_);
  const std::string old_kid = ActiveKid(*keys_, acme_);
  EXPECT_EQ(ActiveKid(*other, acme_), old_kid);
  EXPECT_EQ(StoredKeys(acme_).size(), 2u);  // the second manager made none of its own

  absl::StatusOr<store::OidcKeyRecord> rotated = keys_->Rotate(admin_, acme_, kAlgEs256);
  ASSERT_TRUE(rotated.ok());
  clock_.Advance(kRefresh - absl::Seconds(1));
  EXPECT_THAT(JwksKids(*other, acme_), Not(Contains(rotated->kid)));
  clock_.Advance(absl::Seconds(1));
  EXPECT_THAT(JwksKids(*other, acme_), Contains(rotated->kid));
  EXPECT_TRUE(other->PublicKey(acme_, rotated->kid).ok());

  clock_.Advance(kPublishAhead);
  EXPECT_EQ(ActiveKid(*other, acme_), rotated->kid);
  EXPECT_EQ(ActiveKid(*keys_, acme_), rotated->kid);
}

TEST_F(KeyManagerTest, ConcurrentFirstUseMakesOneKeyPerAlgorithm) {
  std::vector<std::thread> threads;
  std::vector<std::string> kids(8);
  for (size_t i = 0; i < kids.size(); ++i) {
    threads.emplace_back([&, i] {
      absl::StatusOr<std::shared_ptr<const ActiveKey>> active = keys_->Active(acme_);
      if (active.ok()) kids[i] = (*active)->kid;
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_FALSE(kids[0].empty());
  EXPECT_EQ(std::count(kids.begin(), kids.end(), kids[0]), static_cast<long>(kids.size()));
  EXPECT_EQ(StoredKeys(acme_).size(), 2u);
  EXPECT_EQ(Events(acme_, "oauth2.key.create").size(), 2u);
}

}  // namespace
}  // namespace custos::oidc
