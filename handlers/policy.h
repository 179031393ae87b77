#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "db/approval.h"
#include "db/approval_store.h"
#include "handlers/action_type.h"
#include "handlers/handler_registry.h"

namespace approvald::handlers {

/// Who is calling, as authenticated (a bearer token's line, or a client certificate's).
struct Caller {
  std::string name;
  std::vector<std::string> roles;
};

/// The server-wide expiry limits that a type's own policy may override.
struct PolicyDefaults {
  absl::Duration default_ttl = absl::Hours(24);
  absl::Duration max_ttl = absl::Hours(24 * 30);
};

/// A type's expiry bounds: its own, else the server's; the default never exceeds the maximum.
struct TtlBounds {
  absl::Duration default_ttl;
  absl::Duration max_ttl;
};
TtlBounds EffectiveTtl(const ActionType& type, const PolicyDefaults& defaults);

/// Whether `caller` may create an approval of `type`: OK, or PERMISSION_DENIED / ROLE_REQUIRED
/// (it needs one of the type's requester_roles, when it lists any).
absl::Status MayCreate(const ActionType& type, const Caller& caller);

/// Whether `caller` may decide `approval` (approve, reject) or cancel it, under its type's policy
/// as configured now (`type` null: the type has left the config). On success, what the decision
/// needs (the votes an approve takes). Errors: PERMISSION_DENIED (a cancel by anyone but the
/// requester); FAILED_PRECONDITION / UNKNOWN_ACTION_TYPE (a type no longer configured: nobody
/// decides it under unknown rules); PERMISSION_DENIED / ROLE_REQUIRED (approve and reject need
/// one of the type's approver_roles); PERMISSION_DENIED / SELF_APPROVAL (the requester may not
/// approve their own unless allow_self_approval; rejecting their own is allowed).
absl::StatusOr<db::DecisionPolicy> MayDecide(const ActionType* type, const Caller& caller,
                                             const db::ApprovalRecord& approval,
                                             db::Decision decision);

/// The one-statement path (db::DecideAtOnce, db/queries/decide_at_once.sql): the types whose
/// decision by `caller` depends on nothing but the row, by MayDecide's own rules, split by
/// whether the requester's own approvals are allowed. Approve also needs one vote and a handler
/// with a fixed result (noop). nullopt if no type qualifies.
std::optional<db::DecideAtOnce> DecideAtOnceFor(const HandlerRegistry& registry,
                                                const Caller& caller, db::Decision decision);

}  // namespace approvald::handlers
