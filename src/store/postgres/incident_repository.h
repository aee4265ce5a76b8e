#pragma once

// The PostgreSQL IncidentRepository (store/store.h): support activity, incidents, security
// contacts, notifications and status notices, in the tables of schema step 6 (store/schema.h).

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "store/postgres/pg.h"
#include "store/store.h"

namespace custos::store::postgres {

// Works on one connection inside the transaction that made it, like every repository of a
// Transaction; statements are prepared once per connection. A write inside a read-only
// transaction fails with kFailedPrecondition. Not thread-safe: it belongs to the transaction's
// thread.
class PgIncidentRepository final : public IncidentRepository {
 public:
  explicit PgIncidentRepository(Connection& conn);
  PgIncidentRepository(const PgIncidentRepository&) = delete;
  PgIncidentRepository& operator=(const PgIncidentRepository&) = delete;

  absl::StatusOr<int64_t> InsertActivity(const SupportActivityRecord& row) override;
  absl::StatusOr<std::vector<SupportActivityRecord>> QueryActivity(
      const ActivityQuery& query) override;
  absl::StatusOr<std::vector<std::string>> ListActivityIps(absl::Time from, absl::Time to) override;

  absl::Status Insert(const IncidentRecord& incident) override;
  absl::StatusOr<IncidentRecord> Get(std::string_view id) override;
  absl::StatusOr<std::vector<IncidentRecord>> List(int limit) override;
  absl::Status Update(const IncidentRecord& incident) override;

  absl::Status InsertContact(const SecurityContactRecord& contact) override;
  absl::StatusOr<std::vector<SecurityContactRecord>> ListContacts(const TenantId& tenant) override;
  absl::StatusOr<SecurityContactRecord> GetContact(const TenantId& tenant,
                                                   std::string_view id) override;
  absl::Status DeleteContact(const TenantId& tenant, std::string_view id) override;

  absl::Status InsertNotification(const NotificationRecord& notification) override;
  absl::StatusOr<std::vector<NotificationRecord>> ListNotifications(
      std::string_view incident_id) override;
  absl::StatusOr<std::vector<NotificationRecord>> ListNotificationsForTenant(
      const TenantId& tenant) override;
  absl::StatusOr<NotificationRecord> GetNotification(const TenantId& tenant,
                                                     std::string_view id) override;
  absl::Status UpdateNotification(const NotificationRecord& notification) override;
  absl::StatusOr<bool> AnyDue(absl::Time now) override;
  absl::StatusOr<std::vector<NotificationRecord>> LeaseDue(absl::Time now, absl::Time lease_until,
                                                           int limit) override;

  absl::Status InsertNotice(const StatusNoticeRecord& notice) override;
  absl::Status UpdateNotice(const StatusNoticeRecord& notice) override;
  absl::StatusOr<std::vector<StatusNoticeRecord>> ListNotices(int limit) override;

 private:
  Connection& conn_;
};

}  // namespace custos::store::postgres
