#pragma once

#include <atomic>
#include <memory>

#include "handlers/action_handler.h"
#include "handlers/handler_registry.h"

namespace approvald::testing {

/// SQL that creates the side-effect table the test handlers write to.
inline constexpr char kCreateEffectsTable[] =
    "CREATE TABLE test_effects (id bigserial PRIMARY KEY, approval_id uuid NOT NULL, "
    "note text NOT NULL DEFAULT '')";

/// `test.effect`: inserts one test_effects row through the decision's transaction.
/// `test.fail`: inserts a row, then fails permanently (the row must be rolled back).
/// `test.transient`: fails with UNAVAILABLE (the approval must stay pending).
/// `test.sqlerror`: runs a statement that violates a constraint (a permanent failure).
/// Also `noop`. `executions` counts every Execute call that committed nothing yet.
std::shared_ptr<handlers::HandlerRegistry> MakeTestRegistry(
    std::shared_ptr<std::atomic<int>> executions = nullptr);

}  // namespace approvald::testing
