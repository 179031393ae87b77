#pragma once

#include "absl/status/statusor.h"
#include "db/query.h"
#include "db/rows.h"

namespace approvald::db {

/// An open PostgreSQL transaction. Handlers receive one to make their own writes atomically with
/// the decision. Not thread-safe: one thread uses a transaction at a time.
class Tx {
 public:
  virtual ~Tx() = default;

  /// Runs one statement with bound parameters (never spliced into the text).
  /// Errors: the SQLSTATE mapping of db/pg/pg_error.h (ABORTED for serialization failures and
  /// deadlocks, UNAVAILABLE for a lost connection, FAILED_PRECONDITION for constraint
  /// violations, DEADLINE_EXCEEDED for a statement timeout, ...). After an error the
  /// transaction is aborted; the caller decides whether the whole decision is retried.
  virtual absl::StatusOr<Rows> Exec(const Query& query, const Params& params) = 0;
};

}  // namespace approvald::db
