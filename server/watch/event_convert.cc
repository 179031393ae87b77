#include "server/watch/event_convert.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "server/api/proto_convert.h"

namespace approvald::server {

absl::Status EventToProto(const db::EventRecord& e, approvals::v1::ApprovalEvent* out) {
  out->set_event_id(e.id);
  approvals::v1::EventType type = approvals::v1::EVENT_TYPE_UNSPECIFIED;
  approvals::v1::EventType_Parse(absl::StrCat("EVENT_TYPE_", absl::AsciiStrToUpper(e.type)), &type);
  out->set_type(type);
  out->set_actor(e.actor);
  *out->mutable_event_time() = ToTimestamp(e.time);
  if (e.approval.status.empty()) {  // an event from before snapshots were recorded
    out->mutable_approval()->set_id(e.approval.id);
    return absl::OkStatus();
  }
  return ToProto(e.approval, out->mutable_approval());
}

bool EventMatches(const approvals::v1::ApprovalEvent& event,
                  const approvals::v1::WatchApprovalsRequest& filter) {
  if (!filter.action_type().empty() && event.approval().action_type() != filter.action_type()) {
    return false;
  }
  if (!filter.requested_by().empty() && event.approval().requested_by() != filter.requested_by()) {
    return false;
  }
  // Ids as canonical (lower case): the reactor's filter is normalised when the stream starts.
  if (filter.approval_ids_size() > 0 &&
      std::find(filter.approval_ids().begin(), filter.approval_ids().end(),
                event.approval().id()) == filter.approval_ids().end()) {
    return false;
  }
  if (filter.statuses_size() == 0) return true;
  return std::find(filter.statuses().begin(), filter.statuses().end(), event.approval().status()) !=
         filter.statuses().end();
}

}  // namespace approvald::server
