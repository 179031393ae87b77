#include "server/api/validation.h"

#include <cmath>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "db/errors.h"
#include "handlers/handler_registry.h"
#include "server/api/proto_convert.h"

namespace approvald::server {
namespace {

namespace pb = google::protobuf;
using Violations = std::vector<std::pair<std::string, std::string>>;

absl::Status Check(const Violations& v) {
  if (v.empty()) return absl::OkStatus();
  std::string message = "invalid request: ";
  for (size_t i = 0; i < v.size(); ++i) {
    absl::StrAppend(&message, i ? "; " : "", v[i].first, ": ", v[i].second);
  }
  return db::FieldErrors(v, approvals::v1::ERROR_REASON_UNSPECIFIED, message);
}

void CheckId(absl::string_view field, absl::string_view id, Violations& v) {
  if (id.empty()) {
    v.emplace_back(field, "is required");
  } else if (!IsUuid(id)) {
    v.emplace_back(field, "must be a UUID (8-4-4-4-12 hex digits)");
  }
}

void CheckText(absl::string_view field, absl::string_view text, size_t max, Violations& v) {
  if (text.size() > max) {
    v.emplace_back(field, absl::StrCat("must be at most ", max, " bytes"));
  } else if (text.find('\0') != absl::string_view::npos) {
    v.emplace_back(field, "must not contain NUL characters");
  }
}

void CheckKey(absl::string_view field, absl::string_view key, size_t max, Violations& v) {
  if (key.size() > max) {
    v.emplace_back(field, absl::StrCat("must be at most ", max, " bytes"));
    return;
  }
  for (char c : key) {
    if (static_cast<unsigned char>(c) < 0x21 || c == 0x7f) {
      v.emplace_back(field, "must be printable without spaces or control characters");
      return;
    }
  }
}

// The filters that ListApprovals and WatchApprovals share.
void CheckFilters(const google::protobuf::RepeatedField<int>& statuses,
                  const std::string& action_type, Violations& v) {
  for (int i = 0; i < statuses.size(); ++i) {
    if (!StatusStorageName(static_cast<approvals::v1::ApprovalStatus>(statuses[i]))) {
      v.emplace_back(absl::StrCat("statuses[", i, "]"),
                     "must be a known status other than UNSPECIFIED");
    }
  }
  if (!action_type.empty() && !handlers::IsValidActionType(action_type)) {
    v.emplace_back("action_type", "must match ^[a-z][a-z0-9_.]{0,63}$");
  }
}

void CheckVersion(absl::string_view field, int64_t version, Violations& v) {
  if (version < 0) v.emplace_back(field, "must be 0 (any) or a positive version");
}

// Depth counts nested Struct/list levels; the top-level object is depth 1.
bool CheckValue(const pb::Value& value, int depth, int max_depth, std::string& why);

bool CheckFields(const pb::Struct& s, int depth, int max_depth, std::string& why) {
  if (depth > max_depth) {
    why = absl::StrCat("nests deeper than ", max_depth, " levels");
    return false;
  }
  for (const auto& [key, value] : s.fields()) {
    if (key.find('\0') != std::string::npos) {  // jsonb cannot store \u0000, keys included
      why = "keys must not contain NUL characters";
      return false;
    }
    if (!CheckValue(value, depth, max_depth, why)) return false;
  }
  return true;
}

bool CheckValue(const pb::Value& value, int depth, int max_depth, std::string& why) {
  switch (value.kind_case()) {
    case pb::Value::kNumberValue:
      if (!std::isfinite(value.number_value())) {
        why = "numbers must be finite (no NaN or Infinity)";
        return false;
      }
      return true;
    case pb::Value::kStructValue:
      return CheckFields(value.struct_value(), depth + 1, max_depth, why);
    case pb::Value::kListValue:
      if (depth + 1 > max_depth) {
        why = absl::StrCat("nests deeper than ", max_depth, " levels");
        return false;
      }
      for (const pb::Value& item : value.list_value().values()) {
        if (!CheckValue(item, depth + 1, max_depth, why)) return false;
      }
      return true;
    case pb::Value::kStringValue:
      if (value.string_value().find('\0') != std::string::npos) {
        why = "strings must not contain NUL characters";
        return false;
      }
      return true;
    case pb::Value::KIND_NOT_SET:
      why = "every value must be set (null, number, string, bool, object or list)";
      return false;
    default:
      return true;
  }
}

}  // namespace

bool IsUuid(absl::string_view s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (s[i] != '-') return false;
    } else if (!absl::ascii_isxdigit(static_cast<unsigned char>(s[i]))) {
      return false;
    }
  }
  return true;
}

absl::Status ValidateActionData(const pb::Struct& data, const Limits& limits,
                                std::string* json_out) {
  std::string why;
  if (!CheckFields(data, 1, limits.max_action_data_depth, why)) {
    return db::FieldError("action_data", why, approvals::v1::INVALID_ACTION_DATA);
  }
  // Cheap bound first: the binary size is close to the JSON size.
  if (data.ByteSizeLong() > 4 * limits.max_action_data_bytes) {
    return db::FieldError(
        "action_data",
        absl::StrCat("must be at most ", limits.max_action_data_bytes, " bytes as JSON"),
        approvals::v1::INVALID_ACTION_DATA);
  }
  absl::StatusOr<std::string> json = StructToJson(data);
  if (!json.ok()) {
    return db::FieldError("action_data", json.status().message(),
                          approvals::v1::INVALID_ACTION_DATA);
  }
  if (json->size() > limits.max_action_data_bytes) {
    return db::FieldError(
        "action_data",
        absl::StrCat("must be at most ", limits.max_action_data_bytes, " bytes as JSON"),
        approvals::v1::INVALID_ACTION_DATA);
  }
  if (json_out != nullptr) *json_out = std::move(*json);
  return absl::OkStatus();
}

absl::Status ValidateCreate(const approvals::v1::CreateApprovalRequest& req, const Limits& limits,
                            std::string* action_data_json) {
  Violations v;
  if (req.action_type().empty()) {
    v.emplace_back("action_type", "is required");
  } else if (!handlers::IsValidActionType(req.action_type())) {
    v.emplace_back("action_type", "must match ^[a-z][a-z0-9_.]{0,63}$");
  }
  CheckText("summary", req.summary(), limits.max_summary_bytes, v);
  CheckKey("idempotency_key", req.idempotency_key(), limits.max_key_bytes, v);
  if (req.has_ttl()) {
    const auto& ttl = req.ttl();
    if (ttl.nanos() < -999999999 || ttl.nanos() > 999999999 || ttl.seconds() < 0 ||
        ttl.nanos() < 0 || (ttl.seconds() == 0 && ttl.nanos() < 1000000)) {
      v.emplace_back("ttl", "must be a positive duration of at least 1ms");
    }  // the upper bound is the action type's (checked with the type)
  }
  if (req.has_expire_time()) {
    const auto& ts = req.expire_time();
    // Timestamp's valid range: 0001-01-01 to 9999-12-31.
    if (ts.seconds() < -62135596800 || ts.seconds() > 253402300799 || ts.nanos() < 0 ||
        ts.nanos() > 999999999) {
      v.emplace_back("expire_time", "is not a valid timestamp");
    }
  }
  if (absl::Status st = Check(v); !st.ok()) return st;
  return ValidateActionData(req.action_data(), limits, action_data_json);
}

absl::Status ValidateGet(const approvals::v1::GetApprovalRequest& req) {
  Violations v;
  CheckId("id", req.id(), v);
  return Check(v);
}

absl::Status ValidateList(const approvals::v1::ListApprovalsRequest& req) {
  Violations v;
  CheckFilters(req.statuses(), req.action_type(), v);
  CheckKey("requested_by", req.requested_by(), kMaxPrincipalBytes, v);
  CheckKey("decided_by", req.decided_by(), kMaxPrincipalBytes, v);
  for (int i = 0; i < req.execution_states_size(); ++i) {
    const int s = req.execution_states(i);
    if (s == approvals::v1::EXECUTION_STATE_UNSPECIFIED ||
        !approvals::v1::ExecutionState_IsValid(s)) {
      v.emplace_back(absl::StrCat("execution_states[", i, "]"), "is not an execution state");
    }
  }
  if (req.page_size() < 0) v.emplace_back("page_size", "must not be negative");
  if (req.page_token().size() > 1024) v.emplace_back("page_token", "is not a valid page token");
  return Check(v);
}

absl::Status ValidateWatch(const approvals::v1::WatchApprovalsRequest& req) {
  Violations v;
  CheckFilters(req.statuses(), req.action_type(), v);
  if (req.after_event_id() < 0) v.emplace_back("after_event_id", "must not be negative");
  CheckKey("requested_by", req.requested_by(), kMaxPrincipalBytes, v);
  if (req.approval_ids_size() > kMaxWatchedIds) {
    v.emplace_back("approval_ids", absl::StrCat("must list at most ", kMaxWatchedIds, " ids"));
  } else {
    for (int i = 0; i < req.approval_ids_size(); ++i) {
      CheckId(absl::StrCat("approval_ids[", i, "]"), req.approval_ids(i), v);
    }
  }
  return Check(v);
}

absl::Status ValidateApprove(const approvals::v1::ApproveRequest& req, const Limits& limits) {
  Violations v;
  CheckId("id", req.id(), v);
  CheckVersion("expected_version", req.expected_version(), v);
  CheckText("comment", req.comment(), limits.max_reason_bytes, v);
  CheckKey("request_id", req.request_id(), limits.max_key_bytes, v);
  return Check(v);
}

absl::Status ValidateReject(const approvals::v1::RejectRequest& req, const Limits& limits) {
  Violations v;
  CheckId("id", req.id(), v);
  if (absl::StripAsciiWhitespace(req.reason()).empty()) v.emplace_back("reason", "is required");
  CheckText("reason", req.reason(), limits.max_reason_bytes, v);
  CheckVersion("expected_version", req.expected_version(), v);
  CheckKey("request_id", req.request_id(), limits.max_key_bytes, v);
  return Check(v);
}

absl::Status ValidateCancel(const approvals::v1::CancelApprovalRequest& req, const Limits& limits) {
  Violations v;
  CheckId("id", req.id(), v);
  CheckText("reason", req.reason(), limits.max_reason_bytes, v);
  CheckVersion("expected_version", req.expected_version(), v);
  CheckKey("request_id", req.request_id(), limits.max_key_bytes, v);
  return Check(v);
}

namespace {

// A duration field that may be unset (0) or within [min, max].
void CheckDuration(absl::string_view field, const pb::Duration& d, absl::Duration min,
                   absl::Duration max, Violations& v) {
  if (d.seconds() == 0 && d.nanos() == 0) return;
  const absl::Duration value = absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
  if (d.nanos() < 0 || d.nanos() > 999999999 || value < min || value > max) {
    v.emplace_back(field,
                   absl::StrCat("must be 0 (the default) or between ", absl::FormatDuration(min),
                                " and ", absl::FormatDuration(max)));
  }
}

void CheckLease(absl::string_view id, absl::string_view token, Violations& v) {
  CheckId("execution_id", id, v);
  CheckId("lease_token", token, v);
}

}  // namespace

absl::Status ValidateClaim(const approvals::v1::ClaimExecutionsRequest& req) {
  Violations v;
  if (req.action_types_size() == 0) v.emplace_back("action_types", "must name at least one type");
  if (req.action_types_size() > kMaxClaimTypes) {
    v.emplace_back("action_types", absl::StrCat("must name at most ", kMaxClaimTypes));
  }
  for (int i = 0; i < req.action_types_size() && i < kMaxClaimTypes; ++i) {
    if (!handlers::IsValidActionType(req.action_types(i))) {
      v.emplace_back(absl::StrCat("action_types[", i, "]"), "must match ^[a-z][a-z0-9_.]{0,63}$");
    }
  }
  if (req.max_executions() < 0 || req.max_executions() > kMaxClaimExecutions) {
    v.emplace_back("max_executions", absl::StrCat("must be 0 (one) to ", kMaxClaimExecutions));
  }
  CheckDuration("lease_duration", req.lease_duration(), absl::Seconds(1), absl::Hours(24), v);
  CheckDuration("wait", req.wait(), absl::Milliseconds(1), kMaxClaimWait, v);
  return Check(v);
}

absl::Status ValidateExtend(const approvals::v1::ExtendLeaseRequest& req) {
  Violations v;
  CheckLease(req.execution_id(), req.lease_token(), v);
  CheckDuration("lease_duration", req.lease_duration(), absl::Seconds(1), absl::Hours(24), v);
  return Check(v);
}

absl::Status ValidateComplete(const approvals::v1::CompleteExecutionRequest& req,
                              const Limits& limits, std::string* result_json) {
  Violations v;
  CheckLease(req.execution_id(), req.lease_token(), v);
  if (absl::Status st = Check(v); !st.ok()) return st;
  absl::Status data = ValidateActionData(req.result(), limits, result_json);
  if (!data.ok()) {
    return db::FieldError("result", absl::StrCat("is not a storable result: ", data.message()));
  }
  return absl::OkStatus();
}

absl::Status ValidateFail(const approvals::v1::FailExecutionRequest& req, const Limits& limits) {
  Violations v;
  CheckLease(req.execution_id(), req.lease_token(), v);
  if (req.error().empty()) v.emplace_back("error", "is required (what went wrong)");
  CheckText("error", req.error(), limits.max_reason_bytes, v);
  return Check(v);
}

}  // namespace approvald::server
