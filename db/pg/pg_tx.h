#pragma once

#include <functional>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "db/pg/connection_pool.h"
#include "db/pg/deadline_watch.h"
#include "db/tx.h"

namespace approvald::db::pg {

/// A transaction on a leased connection, ROLLBACK on destruction unless committed. Statements
/// are bounded by the deadline with no statement of their own: a deadline within a second of
/// the session's 30 s bound is the session's statement_timeout and lock_timeout; a shorter one
/// is watched (DeadlineWatch), and what runs when it passes is cancelled (DEADLINE_EXCEEDED; the
/// connection is then discarded). Round trips are few: BEGIN goes out in one pipeline with the
/// first statement, and ExecAndCommit sends the last statement together with COMMIT.
class PgTx final : public Tx {
 public:
  /// DEADLINE_EXCEEDED if the deadline has already passed.
  static absl::StatusOr<std::unique_ptr<PgTx>> Begin(PgConnection& conn, absl::Time deadline);
  ~PgTx() override;

  absl::StatusOr<Rows> Exec(const Query& query, const Params& params) override;
  /// Runs the transaction's last statement and commits, in one round trip. If the statement
  /// fails, nothing is committed (the transaction is rolled back). Errors as for Commit().
  /// A transaction that is this one statement (nothing sent before) sends it alone, without BEGIN
  /// and COMMIT: PostgreSQL commits it as its implicit transaction.
  absl::StatusOr<Rows> ExecAndCommit(const Query& query, const Params& params);

  /// CommitOutcomeUnknown (UNKNOWN) if the connection broke while COMMIT was in flight: the
  /// caller settles it (SettleLostCommit) and reads the state back, never re-runs the work.
  absl::Status Commit();
  absl::Status Rollback();
  absl::Status Savepoint(absl::string_view name);
  absl::Status RollbackToSavepoint(absl::string_view name);

 private:
  PgTx(PgConnection& conn, absl::Time deadline) : conn_(conn), watch_(conn, deadline) {}
  // Sends `steps`, preceded by BEGIN and the timeouts if the transaction has not begun.
  absl::StatusOr<std::vector<Rows>> Send(std::vector<PgConnection::Step> steps, bool* sent);
  absl::Status EnsureBegun();

  PgConnection& conn_;
  bool begun_ = false;
  bool done_ = false;
  DeadlineGuard watch_;  // last: disarmed after the destructor's rollback
};

/// Runs `fn` in a fresh transaction from the pool, re-running it (at most `max_attempts` times,
/// within the deadline) when it fails with a transient error: serialization failure, deadlock,
/// or a connection lost before COMMIT. `fn` commits by itself; an uncommitted transaction is
/// rolled back. Never re-runs after a commit whose outcome is unknown.
absl::Status RunInTransaction(ConnectionPool& pool, absl::Time deadline,
                              const std::function<absl::Status(PgTx&)>& fn, int max_attempts = 3);

/// After a CommitOutcomeUnknown: makes sure the transaction that was committing is finished for
/// good (its backend, if still running, is terminated and waited for), retrying on other
/// connections until `deadline`. OK once it is settled (committed or not, to be read back);
/// DEADLINE_EXCEEDED if the database could not be reached in time.
/// Runs `step` alone (PostgreSQL's implicit transaction, committed when it succeeds). A
/// connection lost after it was sent gives CommitOutcomeUnknown.
absl::StatusOr<Rows> ExecAlone(PgConnection& conn, PgConnection::Step step);

absl::Status SettleLostCommit(ConnectionPool& pool, const absl::Status& commit_unknown,
                              absl::Time deadline);

}  // namespace approvald::db::pg
