#pragma once

#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "approvals/v1/approvals.grpc.pb.h"

namespace approvald::client {

/// Follows a WatchApprovals stream: `on_event` is called for each event and returns false to
/// stop. A stream that drops (the server restarting, a lost connection, RESOURCE_EXHAUSTED) is
/// opened again after a short backoff, resuming after the last event seen (with approval ids
/// and no event seen yet: from their start again), and said so on stderr. Returns OK when
/// `on_event` stopped, DEADLINE_EXCEEDED at `deadline`, or an error that a retry cannot fix
/// (UNAUTHENTICATED, PERMISSION_DENIED, INVALID_ARGUMENT, UNIMPLEMENTED).
absl::Status FollowEvents(approvals::v1::ApprovalService::Stub& stub, const std::string& token,
                          approvals::v1::WatchApprovalsRequest req, absl::Time deadline,
                          const std::function<bool(const approvals::v1::ApprovalEvent&)>& on_event);

/// Whether the approval is final: rejected, expired, cancelled, failed, or approved and
/// executed (an external type's execution has succeeded).
bool IsFinal(const approvals::v1::Approval& approval);

}  // namespace approvald::client
