#include "db/pg/approval_row.h"

#include "absl/strings/str_cat.h"
#include "db/pg/pg_time.h"

namespace approvald::db::pg {
namespace {

absl::StatusOr<std::optional<absl::Time>> OptionalTime(const Rows& rows, size_t row,
                                                       absl::string_view column) {
  const Param& v = rows.Get(row, column);
  if (!v) return std::optional<absl::Time>();
  absl::StatusOr<absl::Time> t = ParsePgTimestamp(*v);
  if (!t.ok()) return t.status();
  return std::optional<absl::Time>(*t);
}

}  // namespace

absl::StatusOr<ApprovalRecord> ParseApprovalRow(const Rows& rows, size_t row) {
  ApprovalRecord a;
  a.id = rows.GetString(row, "id");
  a.action_type = rows.GetString(row, "action_type");
  a.action_data_json = rows.GetString(row, "action_data");
  a.status = rows.GetString(row, "status");
  a.summary = rows.GetString(row, "summary");
  a.requested_by = rows.GetString(row, "requested_by");
  a.idempotency_key = rows.Get(row, "idempotency_key");
  absl::StatusOr<int64_t> version = rows.GetInt(row, "version");
  if (!version.ok()) return version.status();
  a.version = *version;
  absl::StatusOr<absl::Time> created = ParsePgTimestamp(rows.GetString(row, "created_at"));
  if (!created.ok()) return created.status();
  a.create_time = *created;
  absl::StatusOr<absl::Time> expires = ParsePgTimestamp(rows.GetString(row, "expires_at"));
  if (!expires.ok()) return expires.status();
  a.expire_time = *expires;
  a.decided_by = rows.Get(row, "decided_by");
  auto decided = OptionalTime(rows, row, "decided_at");
  if (!decided.ok()) return decided.status();
  a.decide_time = *decided;
  a.decision_reason = rows.Get(row, "decision_reason");
  auto executed = OptionalTime(rows, row, "executed_at");
  if (!executed.ok()) return executed.status();
  a.execute_time = *executed;
  a.execution_result_json = rows.Get(row, "execution_result");
  a.execution_error = rows.Get(row, "execution_error");
  return a;
}

ErrorMetadata StateMetadata(const ApprovalRecord& approval) {
  return {{"status", StatusEnumName(approval.status)},
          {"version", absl::StrCat(approval.version)},
          {"approval_id", approval.id}};
}

}  // namespace approvald::db::pg
