#pragma once

#include <optional>

#include "db/approval_store.h"
#include "handlers/handler_registry.h"
#include "server/token_store.h"

namespace approvald::server {

/// What the action types' policies let `principal` decide before the approval's row is read, for
/// db::DecideInput::at_once: the same rules as the decision's authorization (approver roles,
/// self-approval, requester-only cancel), limited to approve decisions that need one vote and
/// whose handler has a fixed result (noop). nullopt if no type qualifies.
std::optional<db::DecideAtOnce> DecideAtOnceFor(const handlers::HandlerRegistry& registry,
                                                const Principal& principal, db::Decision decision);

}  // namespace approvald::server
