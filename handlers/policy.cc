#include "handlers/policy.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "db/errors.h"
#include "db/struct_json.h"

namespace approvald::handlers {
namespace {

namespace v1 = approvals::v1;

// Whose approvals a decision may be made on, with respect to the requester.
enum class Requester { kAnyone, kNotTheirOwn, kOnlyTheirOwn };

// The two rules every decision follows, written once for MayDecide and DecideAtOnceFor.
// Approve and reject need an approver role; cancel needs none (only the requester cancels).
bool RoleAllows(const ActionType& type, const Caller& caller, db::Decision decision) {
  return decision == db::Decision::kCancel || HasAnyRole(caller.roles, type.policy.approver_roles);
}
// Cancel is the requester's own; rejecting is the safe direction, so anyone with the role may,
// the requester included; approving one's own needs allow_self_approval.
Requester RequesterRule(const ActionType* type, db::Decision decision) {
  if (decision == db::Decision::kCancel) return Requester::kOnlyTheirOwn;
  if (decision == db::Decision::kReject) return Requester::kAnyone;
  return type != nullptr && type->policy.allow_self_approval ? Requester::kAnyone
                                                             : Requester::kNotTheirOwn;
}

}  // namespace

TtlBounds EffectiveTtl(const ActionType& type, const PolicyDefaults& defaults) {
  const absl::Duration max_ttl = type.policy.max_ttl.value_or(defaults.max_ttl);
  return {std::min(type.policy.default_ttl.value_or(defaults.default_ttl), max_ttl), max_ttl};
}

absl::Status MayCreate(const ActionType& type, const Caller& caller) {
  if (HasAnyRole(caller.roles, type.policy.requester_roles)) return absl::OkStatus();
  return db::ReasonError(absl::StatusCode::kPermissionDenied, v1::ROLE_REQUIRED,
                         absl::StrCat("creating ", type.name, " needs one of the roles: ",
                                      absl::StrJoin(type.policy.requester_roles, ", ")),
                         {{"required_roles", absl::StrJoin(type.policy.requester_roles, ",")}});
}

absl::StatusOr<db::DecisionPolicy> MayDecide(const ActionType* type, const Caller& caller,
                                             const db::ApprovalRecord& approval,
                                             db::Decision decision) {
  const Requester requester = RequesterRule(type, decision);
  if (requester == Requester::kOnlyTheirOwn) {
    if (approval.requested_by != caller.name) {
      return absl::PermissionDeniedError("only the requester may cancel an approval");
    }
    return db::DecisionPolicy{};
  }
  if (type == nullptr) {
    return db::ReasonError(absl::StatusCode::kFailedPrecondition, v1::UNKNOWN_ACTION_TYPE,
                           absl::StrCat("action type ", approval.action_type,
                                        " is no longer configured; only the requester may "
                                        "cancel it"));
  }
  if (!RoleAllows(*type, caller, decision)) {
    return db::ReasonError(
        absl::StatusCode::kPermissionDenied, v1::ROLE_REQUIRED,
        absl::StrCat("deciding ", approval.action_type,
                     " needs one of the roles: ", absl::StrJoin(type->policy.approver_roles, ", ")),
        {{"required_roles", absl::StrJoin(type->policy.approver_roles, ",")}});
  }
  if (requester == Requester::kNotTheirOwn && approval.requested_by == caller.name) {
    return db::ReasonError(absl::StatusCode::kPermissionDenied, v1::SELF_APPROVAL,
                           "the requester of an approval may not approve it",
                           {{"requested_by", approval.requested_by}});
  }
  return db::DecisionPolicy{type->policy.required_approvals};
}

std::optional<db::DecideAtOnce> DecideAtOnceFor(const HandlerRegistry& registry,
                                                const Caller& caller, db::Decision decision) {
  db::DecideAtOnce once;
  if (RequesterRule(nullptr, decision) == Requester::kOnlyTheirOwn) {
    once.own_only = true;  // the row alone says whether it is the caller's, whatever its type
    return once;
  }
  std::string results;
  for (const ActionType* type : registry.All()) {
    if (!RoleAllows(*type, caller, decision)) continue;
    if (decision == db::Decision::kApprove) {
      // A vote below the quorum is not a decision, and a handler that writes must run.
      if (type->policy.required_approvals > 1) continue;
      const std::optional<google::protobuf::Struct> fixed = type->handler->FixedResult();
      if (!fixed) continue;
      std::string json;
      if (!db::AppendJson(*fixed, &json).ok()) continue;
      // Type names need no JSON escaping (^[a-z][a-z0-9_.]*$).
      absl::StrAppend(&results, results.empty() ? "{" : ",", "\"", type->name, "\":", json);
    }
    (RequesterRule(type, decision) == Requester::kAnyone ? once.any_requester : once.not_own)
        .push_back(type->name);
  }
  if (once.any_requester.empty() && once.not_own.empty()) return std::nullopt;
  if (decision == db::Decision::kApprove) once.results_json = results + "}";
  return once;
}

}  // namespace approvald::handlers
