#include "db/approval.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace approvald::db {

std::string StatusEnumName(absl::string_view status) {
  return absl::StrCat("APPROVAL_STATUS_", absl::AsciiStrToUpper(status));
}

size_t HeldBytes(const ApprovalRecord& a) {
  size_t n = sizeof(ApprovalRecord) + a.id.size() + a.action_type.size() +
             a.action_data_json.size() + a.status.size() + a.summary.size() + a.requested_by.size();
  for (const auto* s : {&a.idempotency_key, &a.decided_by, &a.decision_reason,
                        &a.execution_result_json, &a.execution_error}) {
    if (*s) n += (*s)->size();
  }
  for (const VoteRecord& v : a.votes) n += sizeof(VoteRecord) + v.voter.size() + v.comment.size();
  return n;
}

size_t HeldBytes(const EventRecord& e) {
  return sizeof(EventRecord) - sizeof(ApprovalRecord) + e.type.size() + e.actor.size() +
         HeldBytes(e.approval);
}

}  // namespace approvald::db
