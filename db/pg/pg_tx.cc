#include "db/pg/pg_tx.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "db/pg/pg_error.h"
#include "db/queries.h"
#include "db/status_macros.h"

namespace approvald::db::pg {
absl::StatusOr<std::unique_ptr<PgTx>> PgTx::Begin(PgConnection& conn, absl::Time deadline) {
  const absl::Time now = absl::Now();
  if (deadline <= now) return absl::DeadlineExceededError("deadline passed before the transaction");
  return std::unique_ptr<PgTx>(new PgTx(conn, deadline));
}

PgTx::~PgTx() {
  if (begun_ && !done_) (void)Rollback();
}

absl::StatusOr<std::vector<Rows>> PgTx::Send(std::vector<PgConnection::Step> steps, bool* sent) {
  size_t skip = 0;
  if (!begun_) {
    std::vector<PgConnection::Step> all;
    all.reserve(steps.size() + 2);
    all.push_back({&queries::kBegin, {}});
    skip = all.size();
    for (auto& step : steps) all.push_back(std::move(step));
    steps = std::move(all);
    begun_ = true;
  }
  absl::StatusOr<std::vector<Rows>> rows = conn_.ExecPipeline(steps, sent);
  if (!rows.ok()) return rows.status();
  rows->erase(rows->begin(), rows->begin() + static_cast<std::ptrdiff_t>(skip));
  return rows;
}

absl::Status PgTx::EnsureBegun() {
  if (begun_) return absl::OkStatus();
  return Send({}, nullptr).status();
}

absl::StatusOr<Rows> PgTx::Exec(const Query& query, const Params& params) {
  if (begun_) return conn_.Exec(query, params);
  ASSIGN_OR_RETURN(std::vector<Rows> rows, Send({{&query, params}}, nullptr));
  return std::move(rows.back());
}

absl::StatusOr<Rows> PgTx::ExecAndCommit(const Query& query, const Params& params) {
  if (!begun_) {
    // The whole transaction is this one statement: sent alone, it is PostgreSQL's implicit
    // transaction, committed when it succeeds. BEGIN and COMMIT would only add work.
    // Ended either way: nothing is left to roll back.
    begun_ = true;
    done_ = true;
    return ExecAlone(conn_, {&query, params});
  }
  bool sent = false;
  absl::StatusOr<std::vector<Rows>> rows = Send({{&query, params}, {&queries::kCommit, {}}}, &sent);
  if (!rows.ok()) {
    if (sent && conn_.broken()) {
      done_ = true;
      return CommitOutcomeUnknown({conn_.backend_pid(), conn_.backend_start()});
    }
    return rows.status();  // the statement failed: nothing committed (rolled back)
  }
  done_ = true;
  return std::move(rows->front());
}

absl::Status PgTx::Commit() {
  if (!begun_) {  // nothing was sent: nothing to commit
    done_ = true;
    return absl::OkStatus();
  }
  done_ = true;
  absl::Status st = conn_.ExecScript("COMMIT");
  if (!st.ok() && conn_.broken()) {
    return CommitOutcomeUnknown({conn_.backend_pid(), conn_.backend_start()});
  }
  return st;
}

absl::Status PgTx::Rollback() {
  done_ = true;
  if (!begun_) return absl::OkStatus();
  absl::Status st = conn_.ExecScript("ROLLBACK");
  if (!st.ok()) conn_.MarkBroken();  // state unknown: never hand this connection out again
  return st;
}

absl::Status PgTx::Savepoint(absl::string_view name) {
  RETURN_IF_ERROR(EnsureBegun());
  return conn_.ExecScript(absl::StrCat("SAVEPOINT ", name));
}

absl::Status PgTx::RollbackToSavepoint(absl::string_view name) {
  RETURN_IF_ERROR(EnsureBegun());
  return conn_.ExecScript(absl::StrCat("ROLLBACK TO SAVEPOINT ", name));
}

absl::Status RunInTransaction(ConnectionPool& pool, absl::Time deadline,
                              const std::function<absl::Status(PgTx&)>& fn, int max_attempts) {
  absl::Status last;
  for (int attempt = 1; attempt <= max_attempts; ++attempt) {
    if (attempt > 1) pool.CountRetry();
    absl::StatusOr<PoolLease> lease = pool.Acquire(deadline);
    if (!lease.ok()) return lease.status();
    absl::StatusOr<std::unique_ptr<PgTx>> tx = PgTx::Begin(**lease, deadline);
    if (tx.ok()) {
      last = fn(**tx);
    } else {
      last = tx.status();
    }
    if (last.ok() || !IsTransient(last) || absl::Now() >= deadline) break;
  }
  return last;
}

absl::StatusOr<Rows> ExecAlone(PgConnection& conn, PgConnection::Step step) {
  std::vector<PgConnection::Step> one;
  one.push_back(std::move(step));
  bool sent = false;
  absl::StatusOr<std::vector<Rows>> rows = conn.ExecPipeline(one, &sent);
  if (!rows.ok()) {
    if (sent && conn.broken()) {
      return CommitOutcomeUnknown({conn.backend_pid(), conn.backend_start()});
    }
    return rows.status();  // failed, so not committed; or never sent
  }
  return std::move(rows->front());
}

absl::Status SettleLostCommit(ConnectionPool& pool, const absl::Status& commit_unknown,
                              absl::Time deadline) {
  const std::optional<BackendIdentity> backend = LostCommitBackend(commit_unknown);
  if (!backend || backend->pid == 0) return absl::OkStatus();  // nothing to settle by
  absl::Status last;
  while (absl::Now() < deadline) {
    const int64_t wait_ms =
        std::clamp<int64_t>(absl::ToInt64Milliseconds(deadline - absl::Now()), 1, 1000);
    absl::StatusOr<PoolLease> lease = pool.Acquire(deadline);
    if (lease.ok()) {
      absl::StatusOr<Rows> gone =
          (*lease)->Exec(queries::kEndLostBackend,
                         {absl::StrCat(backend->pid), backend->start, absl::StrCat(wait_ms)});
      if (gone.ok() && gone->GetBool(0, "gone")) return absl::OkStatus();
      // Not allowed to end it (no pg_signal_backend): the row lock still orders the read-back.
      if (!gone.ok() && gone.status().code() != absl::StatusCode::kUnavailable &&
          !IsTransient(gone.status())) {
        return absl::OkStatus();
      }
      last = gone.ok() ? absl::OkStatus() : gone.status();
    } else {
      last = lease.status();
    }
    absl::SleepFor(std::min(absl::Milliseconds(100), deadline - absl::Now()));
  }
  return absl::DeadlineExceededError(absl::StrCat(
      "the database connection was lost while COMMIT was in flight and the outcome could not be "
      "read back before the deadline",
      last.ok() ? "" : absl::StrCat(" (", last.message(), ")"),
      ": read the approval, or retry with the same request_id / idempotency_key"));
}

}  // namespace approvald::db::pg
