#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace approvald::db {

/// Status names as stored in ai_approvals.status.
inline constexpr absl::string_view kPending = "pending";
inline constexpr absl::string_view kApproved = "approved";
inline constexpr absl::string_view kRejected = "rejected";
inline constexpr absl::string_view kExpired = "expired";
inline constexpr absl::string_view kCancelled = "cancelled";
inline constexpr absl::string_view kFailed = "failed";

/// The actor of what approvald does by itself (an expiry): no principal may carry this name.
inline constexpr absl::string_view kSystemActor = "approvald";

/// The proto enum name of a stored status ("approved" -> "APPROVAL_STATUS_APPROVED").
std::string StatusEnumName(absl::string_view status);

/// One reviewer's vote on a quorum approval.
struct VoteRecord {
  std::string voter;
  absl::Time time;
  std::string comment;
};

/// Execution state names as stored (executions.state, approvals.execution_state).
inline constexpr absl::string_view kQueued = "queued";
inline constexpr absl::string_view kRunning = "running";
inline constexpr absl::string_view kSucceeded = "succeeded";

/// Where the external execution of an approved action is (types with `handler: external`).
struct ExecutionInfoRecord {
  std::string id;
  std::string state;  ///< queued, running, succeeded, failed
  int attempts = 0;
  std::optional<std::string> lease_holder;
  std::optional<absl::Time> lease_expire_time;
};

/// One row of approvals. JSON columns stay JSON text; the edge converts them.
struct ApprovalRecord {
  std::string id;
  std::string action_type;
  std::string action_data_json = "{}";
  std::string status;
  std::string summary;
  std::string requested_by;
  std::optional<std::string> idempotency_key;
  int64_t version = 0;
  absl::Time create_time;
  absl::Time expire_time;
  std::optional<std::string> decided_by;
  std::optional<absl::Time> decide_time;
  std::optional<std::string> decision_reason;
  std::optional<absl::Time> execute_time;
  std::optional<std::string> execution_result_json;
  std::optional<std::string> execution_error;
  std::vector<VoteRecord> votes;                 ///< oldest first
  std::optional<ExecutionInfoRecord> execution;  ///< external types, once approved
};

/// One row of approval_events with the approval as it stood right after it.
struct EventRecord {
  int64_t id = 0;
  /// created, voted, approved, rejected, expired, cancelled, failed, execution_started,
  /// execution_retry, executed
  std::string type;
  std::string actor;
  absl::Time time;
  int64_t version = 0;
  ApprovalRecord approval;
};

/// About the bytes a record holds in memory (its strings, as read from the database): what a
/// memory budget charges for records read but not yet converted or sent.
size_t HeldBytes(const ApprovalRecord& a);
size_t HeldBytes(const EventRecord& e);

}  // namespace approvald::db
