#pragma once

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "approvals/v1/approvals.pb.h"

namespace approvald::server {

/// Bounds on request fields. Every violation is INVALID_ARGUMENT with a google.rpc.BadRequest
/// naming the field.
struct Limits {
  size_t max_action_data_bytes = 64 * 1024;  ///< as compact JSON
  /// Each level costs protobuf three nested messages; gRPC refuses to parse beyond ~33.
  int max_action_data_depth = 20;
  size_t max_summary_bytes = 2000;
  size_t max_reason_bytes = 2000;
  size_t max_key_bytes = 128;  ///< idempotency_key, request_id
  absl::Duration max_ttl = absl::Hours(24 * 30);
};

inline constexpr int kDefaultPageSize = 50;
inline constexpr int kMaxPageSize = 500;
/// A principal name in a filter (requested_by, decided_by).
inline constexpr size_t kMaxPrincipalBytes = 256;
/// approval_ids of one WatchApprovals stream.
inline constexpr int kMaxWatchedIds = 100;

[[nodiscard]] bool IsUuid(absl::string_view s);

/// On success, `*action_data_json` (if given) holds action_data as JSON, as it will be stored.
absl::Status ValidateCreate(const approvals::v1::CreateApprovalRequest& req, const Limits& limits,
                            std::string* action_data_json = nullptr);
absl::Status ValidateGet(const approvals::v1::GetApprovalRequest& req);
absl::Status ValidateList(const approvals::v1::ListApprovalsRequest& req);
absl::Status ValidateApprove(const approvals::v1::ApproveRequest& req, const Limits& limits);
absl::Status ValidateReject(const approvals::v1::RejectRequest& req, const Limits& limits);
absl::Status ValidateWatch(const approvals::v1::WatchApprovalsRequest& req);
absl::Status ValidateCancel(const approvals::v1::CancelApprovalRequest& req, const Limits& limits);

inline constexpr int kMaxClaimTypes = 20;
inline constexpr int kMaxClaimExecutions = 100;
inline constexpr absl::Duration kMaxClaimWait = absl::Seconds(60);

absl::Status ValidateClaim(const approvals::v1::ClaimExecutionsRequest& req);
absl::Status ValidateExtend(const approvals::v1::ExtendLeaseRequest& req);
/// Also the result's size and depth (as action_data's); on success `*result_json` is it.
absl::Status ValidateComplete(const approvals::v1::CompleteExecutionRequest& req,
                              const Limits& limits, std::string* result_json);
absl::Status ValidateFail(const approvals::v1::FailExecutionRequest& req, const Limits& limits);

/// action_data: nesting depth, finite numbers, and size as JSON (the JSON is kept in `*json` if
/// given, so that the caller need not convert it again).
absl::Status ValidateActionData(const google::protobuf::Struct& data, const Limits& limits,
                                std::string* json = nullptr);

}  // namespace approvald::server
