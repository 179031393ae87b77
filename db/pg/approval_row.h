#pragma once

#include "absl/status/statusor.h"
#include "db/approval.h"
#include "db/errors.h"
#include "db/rows.h"

namespace approvald::db::pg {

/// Reads row `row` of a `SELECT * FROM ai_approvals` (or RETURNING *) result.
absl::StatusOr<ApprovalRecord> ParseApprovalRow(const Rows& rows, size_t row);

/// ErrorInfo metadata describing the approval's current state: status and version.
ErrorMetadata StateMetadata(const ApprovalRecord& approval);

}  // namespace approvald::db::pg
