#include "server/api/proto_convert.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "db/struct_json.h"

namespace approvald::server {

namespace pb = google::protobuf;

absl::StatusOr<std::string> StructToJson(const pb::Struct& value) {
  std::string json;
  if (absl::Status st = db::AppendJson(value, &json); !st.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("not representable as JSON: ", st.message()));
  }
  return json;
}

absl::StatusOr<pb::Struct> JsonToStruct(absl::string_view json) {
  absl::StatusOr<pb::Struct> value = db::ParseJsonObject(json);
  if (!value.ok()) {
    return absl::InternalError(
        absl::StrCat("stored JSON does not parse: ", value.status().message()));
  }
  return value;
}

pb::Timestamp ToTimestamp(absl::Time t) {
  pb::Timestamp ts;
  const int64_t micros = absl::ToUnixMicros(t);
  int64_t seconds = micros / 1000000;
  int64_t rem = micros % 1000000;
  if (rem < 0) {
    rem += 1000000;
    --seconds;
  }
  ts.set_seconds(seconds);
  ts.set_nanos(static_cast<int32_t>(rem * 1000));
  return ts;
}

absl::Time FromTimestamp(const pb::Timestamp& ts) {
  return absl::FromUnixSeconds(ts.seconds()) + absl::Nanoseconds(ts.nanos());
}

absl::Duration FromDuration(const pb::Duration& d) {
  return absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
}

pb::Duration ToDuration(absl::Duration d) {
  pb::Duration out;
  const int64_t nanos = absl::ToInt64Nanoseconds(d);
  out.set_seconds(nanos / 1000000000);
  out.set_nanos(static_cast<int32_t>(nanos % 1000000000));
  return out;
}

std::optional<absl::string_view> StatusStorageName(approvals::v1::ApprovalStatus status) {
  switch (status) {
    case approvals::v1::APPROVAL_STATUS_PENDING:
      return db::kPending;
    case approvals::v1::APPROVAL_STATUS_APPROVED:
      return db::kApproved;
    case approvals::v1::APPROVAL_STATUS_REJECTED:
      return db::kRejected;
    case approvals::v1::APPROVAL_STATUS_EXPIRED:
      return db::kExpired;
    case approvals::v1::APPROVAL_STATUS_CANCELLED:
      return db::kCancelled;
    case approvals::v1::APPROVAL_STATUS_FAILED:
      return db::kFailed;
    default:
      return std::nullopt;
  }
}

absl::Status ToProto(const db::ApprovalRecord& r, approvals::v1::Approval* out) {
  out->set_id(r.id);
  out->set_action_type(r.action_type);
  absl::StatusOr<pb::Struct> data = JsonToStruct(r.action_data_json);
  if (!data.ok()) return data.status();
  *out->mutable_action_data() = std::move(*data);
  approvals::v1::ApprovalStatus status = approvals::v1::APPROVAL_STATUS_UNSPECIFIED;
  approvals::v1::ApprovalStatus_Parse(db::StatusEnumName(r.status), &status);
  out->set_status(status);
  out->set_summary(r.summary);
  out->set_requested_by(r.requested_by);
  out->set_idempotency_key(r.idempotency_key.value_or(""));
  out->set_version(r.version);
  *out->mutable_create_time() = ToTimestamp(r.create_time);
  *out->mutable_expire_time() = ToTimestamp(r.expire_time);
  out->set_decided_by(r.decided_by.value_or(""));
  if (r.decide_time) *out->mutable_decide_time() = ToTimestamp(*r.decide_time);
  out->set_decision_reason(r.decision_reason.value_or(""));
  if (r.execute_time) *out->mutable_execute_time() = ToTimestamp(*r.execute_time);
  if (r.execution_result_json) {
    absl::StatusOr<pb::Struct> result = JsonToStruct(*r.execution_result_json);
    if (!result.ok()) return result.status();
    *out->mutable_execution_result() = std::move(*result);
  }
  out->set_execution_error(r.execution_error.value_or(""));
  if (r.execution) {
    approvals::v1::ExecutionInfo* x = out->mutable_execution();
    x->set_execution_id(r.execution->id);
    approvals::v1::ExecutionState state = approvals::v1::EXECUTION_STATE_UNSPECIFIED;
    approvals::v1::ExecutionState_Parse(
        absl::StrCat("EXECUTION_STATE_", absl::AsciiStrToUpper(r.execution->state)), &state);
    x->set_state(state);
    x->set_attempts(r.execution->attempts);
    x->set_lease_holder(r.execution->lease_holder.value_or(""));
    if (r.execution->lease_expire_time) {
      *x->mutable_lease_expire_time() = ToTimestamp(*r.execution->lease_expire_time);
    }
    // While it is retried the approval is still APPROVED: the error is the last attempt's.
    x->set_last_error(r.execution_error.value_or(""));
    if (r.status == db::kApproved) out->clear_execution_error();
  }
  for (const db::VoteRecord& v : r.votes) {
    approvals::v1::Vote* vote = out->add_votes();
    vote->set_voter(v.voter);
    *vote->mutable_vote_time() = ToTimestamp(v.time);
    vote->set_comment(v.comment);
  }
  return absl::OkStatus();
}

absl::Status ExecutionToProto(const db::ExecutionRecord& x, approvals::v1::Execution* out) {
  out->set_execution_id(x.id);
  approvals::v1::ExecutionState state = approvals::v1::EXECUTION_STATE_UNSPECIFIED;
  approvals::v1::ExecutionState_Parse(
      absl::StrCat("EXECUTION_STATE_", absl::AsciiStrToUpper(x.state)), &state);
  out->set_state(state);
  out->set_attempt(x.attempt);
  out->set_max_attempts(x.max_attempts);
  out->set_idempotency_key(x.id);
  out->set_lease_token(x.lease_token.value_or(""));
  if (x.lease_expire_time && x.state == db::kRunning) {
    *out->mutable_lease_expire_time() = ToTimestamp(*x.lease_expire_time);
  }
  out->set_last_error(x.last_error.value_or(""));
  if (x.result_json) {
    absl::StatusOr<google::protobuf::Struct> result = JsonToStruct(*x.result_json);
    if (!result.ok()) return result.status();
    *out->mutable_result() = std::move(*result);
  }
  if (x.due_time && x.state == db::kQueued) {
    *out->mutable_next_attempt_time() = ToTimestamp(*x.due_time);
  }
  return ToProto(x.approval, out->mutable_approval());
}

}  // namespace approvald::server
