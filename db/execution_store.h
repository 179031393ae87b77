#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "db/approval.h"

namespace approvald::db {

/// One execution of an approved action of an external type, with its approval.
struct ExecutionRecord {
  std::string id;  ///< also its idempotency key, the same for every attempt
  std::string state;
  int attempt = 0;
  int max_attempts = 1;
  std::optional<std::string> lease_token;
  std::optional<std::string> lease_holder;
  std::optional<absl::Time> lease_expire_time;
  std::optional<absl::Time> due_time;
  std::optional<std::string> last_error;
  std::optional<std::string> result_json;
  ApprovalRecord approval;
};

struct ClaimInput {
  std::vector<std::string> action_types;
  int max = 1;
  absl::Duration lease = absl::Seconds(30);
  std::string worker;  ///< the claiming principal
  absl::Time deadline = absl::InfiniteFuture();
};

struct ClaimResult {
  std::vector<ExecutionRecord> claimed;
  /// When claimed is empty: how long until one of these types is due (a retry's backoff, a
  /// lease that runs out), by the database clock; nullopt if none is queued or running.
  std::optional<absl::Duration> next_due;
};

/// Checks that the caller may work on executions of an action type (its executor roles).
using MayExecute = std::function<absl::Status(const std::string& action_type)>;
/// The delay before the attempt after `attempt` failed; null: the failure is for good.
using RetryDelay = std::function<absl::Duration(int attempt)>;

/// A worker's call on one execution, fenced by the lease token of its claim.
struct LeaseCall {
  std::string execution_id;
  std::string lease_token;
  std::string worker;
  absl::Time deadline = absl::InfiniteFuture();
  /// The types the caller may work on: a call that is in order is then made in one statement;
  /// anything else (or none listed) is judged under the execution's lock, with MayExecute.
  std::vector<std::string> types;
};

/// The queue of external executions on PostgreSQL. Thread-safe. Every call that names an
/// execution answers NOT_FOUND for an unknown id, the MayExecute error, or
/// FAILED_PRECONDITION / LEASE_LOST (and changes nothing) when the token is not the
/// execution's current one or the execution has ended otherwise.
class ExecutionStore {
 public:
  virtual ~ExecutionStore() = default;

  /// First ends the attempts whose lease ran out (due again, or failed after max_attempts),
  /// then claims up to `max` due executions under new leases.
  virtual absl::StatusOr<ClaimResult> Claim(const ClaimInput& input) = 0;
  /// A running execution's lease, now + `lease`.
  virtual absl::StatusOr<ExecutionRecord> Extend(const LeaseCall& call, absl::Duration lease,
                                                 const MayExecute& may) = 0;
  /// Succeeded with `result_json` (an object); the approval is executed. Repeated with the same
  /// token, the stored outcome.
  virtual absl::StatusOr<ExecutionRecord> Complete(const LeaseCall& call,
                                                   const std::string& result_json,
                                                   const MayExecute& may) = 0;
  /// The attempt failed: due again after `retry` (called after `may`) when it is set and
  /// attempts are left, else failed for good (the approval FAILED with `error`). Repeated with
  /// the same token, the stored outcome.
  virtual absl::StatusOr<ExecutionRecord> Fail(const LeaseCall& call, const std::string& error,
                                               const RetryDelay& retry, const MayExecute& may) = 0;
};

}  // namespace approvald::db
