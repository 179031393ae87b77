#include "server/webhooks/webhook_messages.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include "absl/strings/str_cat.h"
#include "approvals/v1/approvals.pb.h"
#include "db/status_macros.h"
#include "server/api/proto_convert.h"
#include "server/watch/event_convert.h"

namespace approvald::server {
namespace {

namespace pb = google::protobuf;

absl::StatusOr<std::string> MessageJson(const pb::Message& m) {
  std::string out;
  if (auto st = pb::util::MessageToJsonString(m, &out, pb::util::JsonPrintOptions()); !st.ok()) {
    return absl::InternalError(
        absl::StrCat("JSON of ", m.GetTypeName(), ": ", st.message().as_string()));
  }
  return out;
}

std::string SlackText(const db::EventRecord& e) {
  const db::ApprovalRecord& a = e.approval;
  std::string text = absl::StrCat("*", a.action_type, "* ", e.type, ": ", a.summary, "\n",
                                  "requested by ", a.requested_by);
  if (a.decided_by) absl::StrAppend(&text, ", decided by ", *a.decided_by);
  if (e.actor != a.requested_by && (!a.decided_by || e.actor != *a.decided_by)) {
    absl::StrAppend(&text, ", by ", e.actor);
  }
  absl::StrAppend(&text, "\nstatus ", a.status, ", approval ", a.id);
  if (a.execution_error) absl::StrAppend(&text, "\nerror: ", *a.execution_error);
  return text;
}

}  // namespace

std::string EventWebhookId(const std::string& subscription, int64_t event_id) {
  return absl::StrCat("evt_", event_id, "_", subscription);
}

bool WantsEvent(const handlers::WebhookSubscription& s, const db::EventRecord& e) {
  if (!s.event_types.empty() && !s.event_types.count(e.type)) return false;
  return s.action_types.empty() || s.action_types.count(e.approval.action_type) > 0;
}

absl::StatusOr<std::string> EventBody(const db::EventRecord& e, const std::string& format) {
  if (format == "slack") {
    pb::Struct message;
    (*message.mutable_fields())["text"].set_string_value(SlackText(e));
    return MessageJson(message);
  }
  approvals::v1::ApprovalEvent event;
  RETURN_IF_ERROR(EventToProto(e, &event));
  return MessageJson(event);
}

absl::StatusOr<std::string> ActionBody(const db::ExecutionRecord& x) {
  approvals::v1::Approval approval;
  RETURN_IF_ERROR(ToProto(x.approval, &approval));
  ASSIGN_OR_RETURN(std::string approval_json, MessageJson(approval));
  ASSIGN_OR_RETURN(pb::Struct approval_value, JsonToStruct(approval_json));
  pb::Struct body;
  (*body.mutable_fields())["executionId"].set_string_value(x.id);
  (*body.mutable_fields())["attempt"].set_number_value(x.attempt);
  *(*body.mutable_fields())["approval"].mutable_struct_value() = std::move(approval_value);
  return MessageJson(body);
}

}  // namespace approvald::server
