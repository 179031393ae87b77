#pragma once

#include "absl/status/status.h"
#include "approvals/v1/approvals.pb.h"
#include "db/approval.h"

namespace approvald::server {

/// Fills an ApprovalEvent (with the approval as it stood after the event).
absl::Status EventToProto(const db::EventRecord& event, approvals::v1::ApprovalEvent* out);

/// WatchApprovals filters: the approval's status after the event, and its action type.
[[nodiscard]] bool EventMatches(const approvals::v1::ApprovalEvent& event,
                                const approvals::v1::WatchApprovalsRequest& filter);

}  // namespace approvald::server
