#pragma once

#include "db/pg/connection_pool.h"
#include "db/webhook_store.h"

namespace approvald::db::pg {

/// WebhookStore on PostgreSQL: each call is one statement on a pooled connection.
class PgWebhookStore final : public WebhookStore {
 public:
  explicit PgWebhookStore(ConnectionPool& pool) : pool_(pool) {}

  absl::Status Register(const std::string& name) override;
  absl::StatusOr<std::optional<WebhookSubscriptionRow>> Acquire(const std::string& name,
                                                                const std::string& holder,
                                                                absl::Duration lease) override;
  absl::Status Advance(const std::string& name, const std::string& token, int64_t cursor,
                       int64_t delivered, absl::Duration lease) override;
  absl::StatusOr<WebhookSubscriptionRow> RecordFailure(const std::string& name,
                                                       const std::string& token,
                                                       const WebhookFailure& failure) override;
  absl::Status Release(const std::string& name, const std::string& token) override;
  absl::StatusOr<std::vector<WebhookSubscriptionRow>> List() override;
  absl::StatusOr<WebhookSubscriptionRow> Redeliver(const std::string& name) override;
  absl::StatusOr<std::vector<EventRecord>> ReadEvents(int64_t after_id, int limit) override;

 private:
  absl::StatusOr<Rows> Exec(const Query& query, const Params& params);
  ConnectionPool& pool_;
};

}  // namespace approvald::db::pg
