#include "db/pg/approval_row.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

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

// approval_votes_json(): [{"voter": ..., "micros": ..., "comment": ...}, ...]
absl::StatusOr<std::vector<VoteRecord>> ParseVotes(const std::string& json) {
  google::protobuf::ListValue list;
  if (!google::protobuf::util::JsonStringToMessage(json, &list).ok()) {
    return absl::InternalError("unexpected votes JSON from the database");
  }
  std::vector<VoteRecord> votes;
  for (const auto& v : list.values()) {
    const auto& f = v.struct_value().fields();
    VoteRecord vote;
    if (auto it = f.find("voter"); it != f.end()) vote.voter = it->second.string_value();
    if (auto it = f.find("comment"); it != f.end()) vote.comment = it->second.string_value();
    if (auto it = f.find("micros"); it != f.end()) {
      vote.time = absl::FromUnixMicros(static_cast<int64_t>(it->second.number_value()));
    }
    votes.push_back(std::move(vote));
  }
  return votes;
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
  if (const Param& votes = rows.Get(row, "votes"); votes) {
    absl::StatusOr<std::vector<VoteRecord>> parsed = ParseVotes(*votes);
    if (!parsed.ok()) return parsed.status();
    a.votes = std::move(*parsed);
  }
  return a;
}

ErrorMetadata StateMetadata(const ApprovalRecord& approval) {
  return {{"status", StatusEnumName(approval.status)},
          {"version", absl::StrCat(approval.version)},
          {"approval_id", approval.id}};
}

}  // namespace approvald::db::pg
