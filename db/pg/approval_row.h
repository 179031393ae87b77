#pragma once

#include "absl/status/statusor.h"
#include "db/approval.h"
#include "db/errors.h"
#include "db/rows.h"

namespace approvald::db::pg {

/// Reads row `row` of a `SELECT * FROM ai_approvals` (or RETURNING *) result.
absl::StatusOr<ApprovalRecord> ParseApprovalRow(const Rows& rows, size_t row);

/// Reads an approval snapshot written by to_jsonb(ai_approvals row) || {"votes": [...]}.
absl::StatusOr<ApprovalRecord> ParseApprovalJson(const std::string& json);

/// Reads row `row` of read_events.sql.
absl::StatusOr<EventRecord> ParseEventRow(const Rows& rows, size_t row);

/// ErrorInfo metadata describing the approval's current state: status and version.
ErrorMetadata StateMetadata(const ApprovalRecord& approval);

/// A text[] parameter in PostgreSQL's array literal form, each element quoted.
std::string TextArray(const std::vector<std::string>& items);

}  // namespace approvald::db::pg
