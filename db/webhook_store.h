#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "db/approval.h"

namespace approvald::db {

/// Where one webhook subscription stands (db/migrations/0010_webhooks.sql).
struct WebhookSubscriptionRow {
  std::string name;
  int64_t cursor = 0;  ///< the last event handled (delivered or filtered out)
  std::string state;   ///< active, dead_letter
  std::optional<std::string> lease_holder;
  std::optional<std::string> lease_token;
  std::optional<absl::Time> lease_expire_time;
  std::optional<int64_t> failing_event_id;  ///< the event whose delivery keeps failing
  int attempts = 0;                         ///< failed attempts at failing_event_id
  std::optional<absl::Time> first_failure_time;
  std::optional<absl::Time> next_attempt_time;
  std::optional<std::string> last_error;
  std::optional<absl::Time> dead_letter_time;
  int64_t delivered = 0;
  /// How long until next_attempt_time, by the database clock (zero if due).
  absl::Duration retry_in = absl::ZeroDuration();
};

/// A failed delivery attempt, as the deliverer saw it.
struct WebhookFailure {
  int64_t event_id = 0;
  std::string error;           ///< never holds a secret
  absl::Duration retry_after;  ///< backoff before the next attempt
  absl::Duration max_age;      ///< dead-letter once the first failure of the event is this old
};

/// The cursors and leases of webhook subscriptions on PostgreSQL. Thread-safe. Calls under a
/// lease answer FAILED_PRECONDITION when the token is no longer the subscription's (another
/// replica delivers it now).
class WebhookStore {
 public:
  virtual ~WebhookStore() = default;
  /// Adds the subscription at the head of the log if it is new.
  virtual absl::Status Register(const std::string& name) = 0;
  /// Takes or renews the lease for `holder`; nullopt while another holder has it.
  virtual absl::StatusOr<std::optional<WebhookSubscriptionRow>> Acquire(const std::string& name,
                                                                        const std::string& holder,
                                                                        absl::Duration lease) = 0;
  /// Moves the cursor to `cursor` (`delivered` events sent) and renews the lease.
  virtual absl::Status Advance(const std::string& name, const std::string& token, int64_t cursor,
                               int64_t delivered, absl::Duration lease) = 0;
  /// Records a failed attempt; the row as it now stands (state dead_letter once max_age passed).
  virtual absl::StatusOr<WebhookSubscriptionRow> RecordFailure(const std::string& name,
                                                               const std::string& token,
                                                               const WebhookFailure& failure) = 0;
  /// Ends the lease early (a clean stop), so that another replica goes on at once.
  virtual absl::Status Release(const std::string& name, const std::string& token) = 0;
  virtual absl::StatusOr<std::vector<WebhookSubscriptionRow>> List() = 0;
  /// Back to active at the event it stopped at. NOT_FOUND for an unknown name,
  /// FAILED_PRECONDITION if it is not dead-lettered.
  virtual absl::StatusOr<WebhookSubscriptionRow> Redeliver(const std::string& name) = 0;
  /// Up to `limit` deliverable events after `after_id`, in id order (read_events.sql).
  virtual absl::StatusOr<std::vector<EventRecord>> ReadEvents(int64_t after_id, int limit) = 0;
};

}  // namespace approvald::db
