#pragma once

#include <atomic>
#include <memory>

#include "handlers/action_handler.h"
#include "handlers/handler_registry.h"

namespace approvald::testing {

/// SQL that creates the side-effect table the test handlers write to.
inline constexpr char kCreateEffectsTable[] =
    "CREATE TABLE test_effects (id bigserial PRIMARY KEY, approval_id uuid NOT NULL, "
    "note text NOT NULL DEFAULT ''); "
    "CREATE SEQUENCE test_conflict_probe; "
    "CREATE FUNCTION approvald_test_raise_serialization_failure() RETURNS int LANGUAGE plpgsql "
    "AS $$ BEGIN RAISE EXCEPTION 'forced serialization failure' "
    "USING ERRCODE = 'serialization_failure'; END $$";

/// SQL that makes every UPDATE of an approval row log the statement that made it
/// (current_query(), the prepared statement's text) in decision_statements, so that a test can
/// tell which path decided an approval: DecidedAtOnce(id) below.
inline constexpr char kLogDecisionStatements[] =
    "CREATE TABLE public.decision_statements (approval_id uuid NOT NULL, status text NOT NULL, "
    "statement text NOT NULL); "
    "CREATE FUNCTION public.log_decision_statement() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    "INSERT INTO public.decision_statements VALUES (NEW.id, NEW.status, current_query()); "
    "RETURN NULL; END $$; "
    "CREATE TRIGGER log_decision_statement AFTER UPDATE ON approvald.approvals FOR EACH ROW "
    "EXECUTE FUNCTION public.log_decision_statement()";
/// A query for one text: 'true' if approval $id reached its final status by
/// db/queries/decide_at_once.sql, 'false' if by another statement, NULL if not decided.
inline constexpr char kDecidedAtOnce[] =
    "SELECT bool_or(statement LIKE '-- Decides approval $1 in one statement%') "
    "FROM decision_statements WHERE approval_id = $id AND status <> 'pending'";

/// `test.effect`: inserts one test_effects row through the decision's transaction.
/// `test.fail`: inserts a row, then fails permanently (the row must be rolled back).
/// `test.transient`: fails with UNAVAILABLE (the approval must stay pending).
/// `test.sqlerror`: runs a statement that violates a constraint (a permanent failure).
/// `test.unknown`: fails with UNKNOWN, a handler's own error (permanent: FAILED).
/// `test.conflict_once`: on every odd call the database raises a serialization failure (40001)
/// before the effect row is inserted, so the whole transaction must be run again.
/// `test.fixed`: writes nothing and answers {"fixed": true}, a fixed result (FixedResult), so an
/// approve without a request id runs no Execute (decided in one statement).
/// Also `noop`. `executions` counts every Execute call that committed nothing yet.
std::shared_ptr<handlers::HandlerRegistry> MakeTestRegistry(
    std::shared_ptr<std::atomic<int>> executions = nullptr);

}  // namespace approvald::testing
