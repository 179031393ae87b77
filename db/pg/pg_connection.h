#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "db/query.h"
#include "db/rows.h"

struct pg_conn;

namespace approvald::db::pg {

struct PgConnCloser {
  void operator()(pg_conn* conn) const;
};

/// The statement_timeout and lock_timeout every connection's session starts with.
inline constexpr int64_t kSessionTimeoutMs = 30000;

/// The PostgreSQL schema that holds approvald's tables and functions unless --db-schema names
/// another. approvald's statements (db/queries) name their objects as `approvald.<name>`; on a
/// connection to another schema that qualifier is rewritten when a statement is prepared.
inline constexpr char kDefaultSchema[] = "approvald";

/// Whether `name` may name approvald's schema: a lower-case identifier that needs no quoting
/// ([a-z_][a-z0-9_]*, at most 63 bytes), not one of PostgreSQL's own (pg_*, information_schema),
/// and not public, where approvald's tables would meet the application's.
bool IsValidSchemaName(absl::string_view name);

/// One libpq connection (RAII, move-only). Used by one thread at a time. Each named Query is
/// prepared once per connection, on first use.
class PgConnection {
 public:
  /// Connects with a libpq connection string (empty: libpq's PG* environment variables), then
  /// sets the session to UTC and ISO dates so timestamps parse the same everywhere.
  /// UNAVAILABLE if the server cannot be reached or refuses the login.
  /// `schema`: where approvald's objects live (see kDefaultSchema); the session's search_path
  /// is left as the connection string or the role sets it, for the operators' `sql` actions.
  static absl::StatusOr<std::unique_ptr<PgConnection>> Connect(
      const std::string& dsn, const std::string& schema = kDefaultSchema);

  const std::string& schema() const { return schema_; }

  PgConnection(PgConnection&&) = default;
  PgConnection& operator=(PgConnection&&) = default;

  /// Runs a statement with bound parameters; named queries run as prepared statements.
  absl::StatusOr<Rows> Exec(const Query& query, const Params& params);
  /// One statement of a pipeline.
  struct Step {
    const Query* query;
    Params params;
  };
  /// Sends every statement at once (libpq pipeline mode: one round trip) and returns the rows
  /// of each. The first failing statement's error is returned; the ones after it were skipped
  /// by the server. `*sent` (if given) tells whether the statements left for the server, so a
  /// caller whose pipeline ends with COMMIT knows when a lost connection leaves it unknown.
  absl::StatusOr<std::vector<Rows>> ExecPipeline(const std::vector<Step>& steps,
                                                 bool* sent = nullptr);
  /// Prepares a named query on this connection (once); INVALID_ARGUMENT-like codes from the
  /// server's SQLSTATE if it does not prepare.
  absl::Status Prepare(const Query& query);
  /// Runs SQL text with the simple query protocol (no parameters; several statements allowed).
  /// For transaction control and migrations only.
  absl::Status ExecScript(absl::string_view sql);

  /// True once the connection is lost: the pool discards it.
  bool broken() const;
  /// False once lost or sent a cancel (DeadlineWatch): the pool discards it, since a cancel
  /// request could still reach a later statement.
  bool reusable() const;
  /// Asks the server to cancel what this connection runs (libpq's cancel request, on its own
  /// connection; callable from another thread). Statements after it fail with
  /// DEADLINE_EXCEEDED without being sent.
  void CancelRunning();
  /// Marks the connection unusable (e.g. a transaction left it in an unknown state).
  void MarkBroken() { broken_ = true; }

  /// The server process behind this connection (pid and start time), read at connect: names it
  /// after the connection is lost, e.g. to settle a transaction whose COMMIT was in flight.
  int backend_pid() const { return backend_pid_; }
  const std::string& backend_start() const { return backend_start_; }

 private:
  PgConnection(std::unique_ptr<pg_conn, PgConnCloser> conn, std::string schema);
  /// DEADLINE_EXCEEDED once a cancel was sent.
  absl::Status CheckNotCancelled() const;

  struct CancelState;  // the libpq cancel handle, and whether a cancel was sent
  struct CancelStateDeleter {
    void operator()(CancelState* state) const;
  };

  std::unique_ptr<pg_conn, PgConnCloser> conn_;
  std::unique_ptr<CancelState, CancelStateDeleter> cancel_;
  std::string schema_;
  absl::flat_hash_set<std::string> prepared_;
  bool broken_ = false;
  int backend_pid_ = 0;
  std::string backend_start_;
};

}  // namespace approvald::db::pg
