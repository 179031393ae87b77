#include "db/pg/approval_row.h"

#include <google/protobuf/struct.pb.h>

#include "absl/strings/str_cat.h"
#include "db/pg/pg_time.h"
#include "db/status_macros.h"
#include "db/struct_json.h"

namespace approvald::db::pg {
namespace {

std::vector<VoteRecord> VotesFromList(const google::protobuf::ListValue& list) {
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

// approval_votes_json(): [{"voter": ..., "micros": ..., "comment": ...}, ...]
absl::StatusOr<std::vector<VoteRecord>> ParseVotes(const std::string& json) {
  absl::StatusOr<google::protobuf::Value> list = ParseJson(json);
  if (!list.ok() || !list->has_list_value()) {
    return absl::InternalError("unexpected votes JSON from the database");
  }
  return VotesFromList(list->list_value());
}

// to_jsonb() writes timestamptz as "2026-11-28T01:42:04.536705+00:00".
absl::StatusOr<std::optional<absl::Time>> JsonTime(const google::protobuf::Struct& s,
                                                   const std::string& key) {
  auto it = s.fields().find(key);
  if (it == s.fields().end() || !it->second.has_string_value()) return std::optional<absl::Time>();
  absl::Time t;
  std::string err;
  if (!absl::ParseTime("%Y-%m-%dT%H:%M:%E*S%Ez", it->second.string_value(), &t, &err)) {
    return absl::InternalError(absl::StrCat("unexpected timestamp in an event: ", err));
  }
  return std::optional<absl::Time>(t);
}

std::optional<std::string> JsonString(const google::protobuf::Struct& s, const std::string& key) {
  auto it = s.fields().find(key);
  if (it == s.fields().end() || !it->second.has_string_value()) return std::nullopt;
  return it->second.string_value();
}

std::optional<std::string> JsonObject(const google::protobuf::Struct& s, const std::string& key) {
  auto it = s.fields().find(key);
  if (it == s.fields().end() || !it->second.has_struct_value()) return std::nullopt;
  std::string json;
  if (!AppendJson(it->second.struct_value(), &json).ok()) return std::nullopt;
  return json;
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
  auto decided = OptionalPgTimestamp(rows, row, "decided_at");
  if (!decided.ok()) return decided.status();
  a.decide_time = *decided;
  a.decision_reason = rows.Get(row, "decision_reason");
  auto executed = OptionalPgTimestamp(rows, row, "executed_at");
  if (!executed.ok()) return executed.status();
  a.execute_time = *executed;
  a.execution_result_json = rows.Get(row, "execution_result");
  a.execution_error = rows.Get(row, "execution_error");
  if (const Param& state = rows.Get(row, "execution_state"); state) {
    ExecutionInfoRecord x;
    x.id = rows.GetString(row, "execution_id");
    x.state = *state;
    ASSIGN_OR_RETURN(int64_t attempts, rows.GetInt(row, "execution_attempts"));
    x.attempts = static_cast<int>(attempts);
    x.lease_holder = rows.Get(row, "execution_lease_holder");
    ASSIGN_OR_RETURN(x.lease_expire_time,
                     OptionalPgTimestamp(rows, row, "execution_lease_expires_at"));
    a.execution = std::move(x);
  }
  if (const Param& votes = rows.Get(row, "votes"); votes) {
    absl::StatusOr<std::vector<VoteRecord>> parsed = ParseVotes(*votes);
    if (!parsed.ok()) return parsed.status();
    a.votes = std::move(*parsed);
  }
  return a;
}

absl::StatusOr<ApprovalRecord> ParseApprovalJson(const std::string& json) {
  absl::StatusOr<google::protobuf::Struct> parsed = ParseJsonObject(json);
  if (!parsed.ok()) return absl::InternalError("unexpected approval snapshot in an event");
  const google::protobuf::Struct& s = *parsed;
  ApprovalRecord a;
  a.id = JsonString(s, "id").value_or("");
  a.action_type = JsonString(s, "action_type").value_or("");
  a.action_data_json = JsonObject(s, "action_data").value_or("{}");
  a.status = JsonString(s, "status").value_or("");
  a.summary = JsonString(s, "summary").value_or("");
  a.requested_by = JsonString(s, "requested_by").value_or("");
  a.idempotency_key = JsonString(s, "idempotency_key");
  if (auto it = s.fields().find("version"); it != s.fields().end()) {
    a.version = static_cast<int64_t>(it->second.number_value());
  }
  ASSIGN_OR_RETURN(std::optional<absl::Time> created, JsonTime(s, "created_at"));
  ASSIGN_OR_RETURN(std::optional<absl::Time> expires, JsonTime(s, "expires_at"));
  a.create_time = created.value_or(absl::UnixEpoch());
  a.expire_time = expires.value_or(absl::UnixEpoch());
  a.decided_by = JsonString(s, "decided_by");
  ASSIGN_OR_RETURN(a.decide_time, JsonTime(s, "decided_at"));
  a.decision_reason = JsonString(s, "decision_reason");
  ASSIGN_OR_RETURN(a.execute_time, JsonTime(s, "executed_at"));
  a.execution_result_json = JsonObject(s, "execution_result");
  a.execution_error = JsonString(s, "execution_error");
  if (std::optional<std::string> state = JsonString(s, "execution_state")) {
    ExecutionInfoRecord x;
    x.id = JsonString(s, "execution_id").value_or("");
    x.state = *state;
    if (auto it = s.fields().find("execution_attempts"); it != s.fields().end()) {
      x.attempts = static_cast<int>(it->second.number_value());
    }
    x.lease_holder = JsonString(s, "execution_lease_holder");
    ASSIGN_OR_RETURN(x.lease_expire_time, JsonTime(s, "execution_lease_expires_at"));
    a.execution = std::move(x);
  }
  if (auto it = s.fields().find("votes"); it != s.fields().end() && it->second.has_list_value()) {
    a.votes = VotesFromList(it->second.list_value());
  }
  return a;
}

absl::StatusOr<EventRecord> ParseEventRow(const Rows& rows, size_t row) {
  EventRecord e;
  ASSIGN_OR_RETURN(e.id, rows.GetInt(row, "id"));
  e.type = rows.GetString(row, "type");
  e.actor = rows.GetString(row, "actor");
  ASSIGN_OR_RETURN(e.time, ParsePgTimestamp(rows.GetString(row, "at")));
  ASSIGN_OR_RETURN(e.version, rows.GetInt(row, "version"));
  const Param& snapshot = rows.Get(row, "approval");
  if (snapshot) {
    ASSIGN_OR_RETURN(e.approval, ParseApprovalJson(*snapshot));
  } else {
    e.approval.id = rows.GetString(row, "approval_id");  // written before snapshots existed
  }
  return e;
}

ErrorMetadata StateMetadata(const ApprovalRecord& approval) {
  return {{"status", StatusEnumName(approval.status)},
          {"version", absl::StrCat(approval.version)},
          {"approval_id", approval.id},
          {"action_type", approval.action_type}};
}

std::string TextArray(const std::vector<std::string>& items) {
  std::string out = "{";
  for (const std::string& item : items) {
    if (out.size() > 1) out += ',';
    out += '"';
    for (char c : item) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  out += '}';
  return out;
}

}  // namespace approvald::db::pg
