#include "db/pg/pg_webhook_store.h"

#include "absl/strings/str_cat.h"
#include "db/pg/pg_events.h"
#include "db/pg/pg_time.h"
#include "db/queries.h"
#include "db/status_macros.h"

namespace approvald::db::pg {
namespace {

// Each statement is short; a database that does not answer in this long is treated as down.
constexpr absl::Duration kCallTimeout = absl::Seconds(10);

// A row of fragments/webhook_columns.sql.
absl::StatusOr<WebhookSubscriptionRow> ParseSubscriptionRow(const Rows& rows, size_t row) {
  WebhookSubscriptionRow s;
  s.name = rows.GetString(row, "name");
  ASSIGN_OR_RETURN(s.cursor, rows.GetInt(row, "cursor"));
  s.state = rows.GetString(row, "state");
  s.lease_holder = rows.Get(row, "lease_holder");
  s.lease_token = rows.Get(row, "lease_token");
  ASSIGN_OR_RETURN(s.lease_expire_time, OptionalPgTimestamp(rows, row, "lease_expires_at"));
  if (rows.Get(row, "failing_event_id")) {
    ASSIGN_OR_RETURN(int64_t id, rows.GetInt(row, "failing_event_id"));
    s.failing_event_id = id;
  }
  ASSIGN_OR_RETURN(int64_t attempts, rows.GetInt(row, "attempts"));
  s.attempts = static_cast<int>(attempts);
  ASSIGN_OR_RETURN(s.first_failure_time, OptionalPgTimestamp(rows, row, "first_failed_at"));
  ASSIGN_OR_RETURN(s.next_attempt_time, OptionalPgTimestamp(rows, row, "next_attempt_at"));
  s.last_error = rows.Get(row, "last_error");
  ASSIGN_OR_RETURN(s.dead_letter_time, OptionalPgTimestamp(rows, row, "dead_lettered_at"));
  ASSIGN_OR_RETURN(s.delivered, rows.GetInt(row, "delivered"));
  if (rows.Get(row, "retry_in_ms")) {
    ASSIGN_OR_RETURN(int64_t ms, rows.GetInt(row, "retry_in_ms"));
    s.retry_in = absl::Milliseconds(ms);
  }
  return s;
}

absl::Status LeaseLost(const std::string& name) {
  return absl::FailedPreconditionError(
      absl::StrCat("webhook subscription ", name, ": this replica's lease is gone"));
}

}  // namespace

absl::StatusOr<Rows> PgWebhookStore::Exec(const Query& query, const Params& params) {
  ASSIGN_OR_RETURN(PoolLease lease, pool_.Acquire(absl::Now() + kCallTimeout));
  return lease->Exec(query, params);
}

absl::Status PgWebhookStore::Register(const std::string& name) {
  return Exec(queries::kWebhookRegister, {name}).status();
}

absl::StatusOr<std::optional<WebhookSubscriptionRow>> PgWebhookStore::Acquire(
    const std::string& name, const std::string& holder, absl::Duration lease) {
  ASSIGN_OR_RETURN(Rows rows, Exec(queries::kWebhookAcquire, {name, holder, MillisParam(lease)}));
  if (rows.empty()) return std::optional<WebhookSubscriptionRow>();
  ASSIGN_OR_RETURN(WebhookSubscriptionRow s, ParseSubscriptionRow(rows, 0));
  return std::optional<WebhookSubscriptionRow>(std::move(s));
}

absl::Status PgWebhookStore::Advance(const std::string& name, const std::string& token,
                                     int64_t cursor, int64_t delivered, absl::Duration lease) {
  ASSIGN_OR_RETURN(Rows rows,
                   Exec(queries::kWebhookAdvance, {name, token, absl::StrCat(cursor),
                                                   absl::StrCat(delivered), MillisParam(lease)}));
  if (rows.empty()) return LeaseLost(name);
  return absl::OkStatus();
}

absl::StatusOr<WebhookSubscriptionRow> PgWebhookStore::RecordFailure(
    const std::string& name, const std::string& token, const WebhookFailure& failure) {
  ASSIGN_OR_RETURN(Rows rows,
                   Exec(queries::kWebhookFailed,
                        {name, token, absl::StrCat(failure.event_id), failure.error,
                         MillisParam(failure.retry_after), MillisParam(failure.max_age)}));
  if (rows.empty()) return LeaseLost(name);
  return ParseSubscriptionRow(rows, 0);
}

absl::Status PgWebhookStore::Release(const std::string& name, const std::string& token) {
  return Exec(queries::kWebhookRelease, {name, token}).status();
}

absl::StatusOr<std::vector<WebhookSubscriptionRow>> PgWebhookStore::List() {
  ASSIGN_OR_RETURN(Rows rows, Exec(queries::kWebhookList, {}));
  std::vector<WebhookSubscriptionRow> out;
  for (size_t i = 0; i < rows.size(); ++i) {
    ASSIGN_OR_RETURN(WebhookSubscriptionRow s, ParseSubscriptionRow(rows, i));
    out.push_back(std::move(s));
  }
  return out;
}

absl::StatusOr<WebhookSubscriptionRow> PgWebhookStore::Redeliver(const std::string& name) {
  ASSIGN_OR_RETURN(Rows rows, Exec(queries::kWebhookRedeliver, {name}));
  if (rows.empty()) {
    ASSIGN_OR_RETURN(std::vector<WebhookSubscriptionRow> all, List());
    for (const WebhookSubscriptionRow& s : all) {
      if (s.name == name) {
        return absl::FailedPreconditionError(
            absl::StrCat("webhook subscription ", name, " is ", s.state,
                         ", not dead_letter: nothing to redeliver"));
      }
    }
    return absl::NotFoundError(absl::StrCat("no webhook subscription ", name));
  }
  return ParseSubscriptionRow(rows, 0);
}

absl::StatusOr<std::vector<EventRecord>> PgWebhookStore::ReadEvents(int64_t after_id, int limit) {
  ASSIGN_OR_RETURN(PoolLease lease, pool_.Acquire(absl::Now() + kCallTimeout));
  return ReadEventBatch(*lease, after_id, limit);
}

}  // namespace approvald::db::pg
