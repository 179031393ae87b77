#include "server/decide_at_once.h"

#include "absl/strings/str_cat.h"
#include "server/proto_convert.h"

namespace approvald::server {

std::optional<db::DecideAtOnce> DecideAtOnceFor(const handlers::HandlerRegistry& registry,
                                                const Principal& principal, db::Decision decision) {
  db::DecideAtOnce once;
  if (decision == db::Decision::kCancel) {
    once.own_only = true;
    return once;
  }
  std::string results;
  for (const handlers::ActionType* type : registry.All()) {
    const handlers::ActionPolicy& policy = type->policy;
    if (!handlers::HasAnyRole(principal.roles, policy.approver_roles)) continue;
    if (decision == db::Decision::kReject) {
      once.any_requester.push_back(type->name);
      continue;
    }
    if (policy.required_approvals > 1) continue;
    const std::optional<google::protobuf::Struct> fixed = type->handler->FixedResult();
    if (!fixed) continue;
    absl::StatusOr<std::string> json = StructToJson(*fixed);
    if (!json.ok()) continue;
    // Type names need no JSON escaping (^[a-z][a-z0-9_.]*$).
    absl::StrAppend(&results, results.empty() ? "{" : ",", "\"", type->name, "\":", *json);
    (policy.allow_self_approval ? once.any_requester : once.not_own).push_back(type->name);
  }
  if (once.any_requester.empty() && once.not_own.empty()) return std::nullopt;
  if (decision == db::Decision::kApprove) once.results_json = results + "}";
  return once;
}

}  // namespace approvald::server
