#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "approvals/v1/approvals.pb.h"

namespace approvald::client {

/// Prints an approval (a readable block, or one JSON line) or the error; returns the exit code.
int PrintApprovalResult(const absl::StatusOr<approvals::v1::Approval>& result, bool json);
/// Prints a table of approvals (or one JSON line) and the next page token.
void PrintList(const approvals::v1::ListApprovalsResponse& page, bool json);
/// Prints `error: CODE REASON: message` (or a JSON object) to stderr; returns 1.
int PrintError(const absl::Status& status, bool json);

/// Prints one event per line (or one JSON object per line).
void PrintEvent(const approvals::v1::ApprovalEvent& event, bool json);

/// Prints the action types (a table, or one JSON line).
void PrintActionTypes(const approvals::v1::ListActionTypesResponse& types, bool json);

std::string Sha256Hex(const std::string& data);

}  // namespace approvald::client
