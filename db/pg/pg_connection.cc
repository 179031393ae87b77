#include "db/pg/pg_connection.h"

#include <atomic>
#include <cerrno>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "db/pg/internal/pg_result.h"
#include "db/pg/pg_error.h"
#include "db/queries.h"
#include "db/status_macros.h"

namespace approvald::db::pg {
namespace {

// Session settings every connection runs with: the edge parses timestamps in this format, and a
// statement or lock wait never runs unbounded (transactions lower it from the caller's deadline).
constexpr absl::string_view kSessionSetup =
    "SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'iso_8601'; "
    "SET statement_timeout = '30s'; SET lock_timeout = '30s'; "
    "SET idle_in_transaction_session_timeout = '60s'";
static_assert(kSessionTimeoutMs == 30000, "kSessionSetup sets 30s");

std::string ConnectionMessage(const PGconn* conn) {
  std::string message = PQerrorMessage(conn);
  while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
  return message;
}

// Builds the status for a failed statement: SQLSTATE mapping plus a message safe to show
// (the server's primary message and the statement name; never parameters).
absl::Status ResultError(const PGconn* conn, const PGresult* res, absl::string_view name) {
  const char* state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : nullptr;
  const char* primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : nullptr;
  if (PQstatus(conn) == CONNECTION_BAD || state == nullptr) {
    return MarkTransient(absl::UnavailableError(
        absl::StrCat("database connection lost: ", ConnectionMessage(conn))));
  }
  const absl::StatusCode code = CodeForSqlState(state);
  absl::Status status(code, absl::StrCat(primary ? primary : "database error", " (SQLSTATE ", state,
                                         name.empty() ? "" : ", in ", name, ")"));
  const absl::string_view s = state;
  if (s == "40001" || s == "40P01" || code == absl::StatusCode::kUnavailable) {
    return MarkTransient(status);
  }
  return status;
}

Rows ReadRows(const PGresult* res) {
  const int nrows = PQntuples(res);
  const int ncols = PQnfields(res);
  std::vector<std::string> columns;
  std::vector<uint32_t> types;
  columns.reserve(static_cast<size_t>(ncols));
  for (int c = 0; c < ncols; ++c) {
    columns.emplace_back(PQfname(res, c));
    types.push_back(PQftype(res, c));
  }
  std::vector<std::vector<Param>> values(static_cast<size_t>(nrows));
  for (int r = 0; r < nrows; ++r) {
    auto& row = values[static_cast<size_t>(r)];
    row.reserve(static_cast<size_t>(ncols));
    for (int c = 0; c < ncols; ++c) {
      if (PQgetisnull(res, r, c)) {
        row.emplace_back(std::nullopt);
      } else {
        row.emplace_back(
            std::string(PQgetvalue(res, r, c), static_cast<size_t>(PQgetlength(res, r, c))));
      }
    }
  }
  int64_t affected = nrows;
  if (const char* tuples = PQcmdTuples(const_cast<PGresult*>(res)); tuples && *tuples) {
    affected = std::strtoll(tuples, nullptr, 10);
  }
  return Rows(std::move(columns), std::move(values), affected, std::move(types));
}

}  // namespace

void PgConnCloser::operator()(pg_conn* conn) const { PQfinish(conn); }

struct PgConnection::CancelState {
  PGcancel* handle = nullptr;  // from PQgetCancel: usable from any thread
  std::atomic<bool> sent{false};
};

void PgConnection::CancelStateDeleter::operator()(CancelState* state) const {
  if (state->handle != nullptr) PQfreeCancel(state->handle);
  delete state;
}

PgConnection::PgConnection(std::unique_ptr<pg_conn, PgConnCloser> conn, std::string schema)
    : conn_(std::move(conn)), cancel_(new CancelState()), schema_(std::move(schema)) {
  cancel_->handle = PQgetCancel(conn_.get());
}

bool PgConnection::reusable() const { return !broken() && !cancel_->sent.load(); }

void PgConnection::CancelRunning() {
  cancel_->sent = true;
  if (cancel_->handle == nullptr) return;
  char error[256];
  (void)PQcancel(cancel_->handle, error, sizeof(error));  // a failed request: statement_timeout
}

absl::Status PgConnection::CheckNotCancelled() const {
  if (!cancel_->sent.load()) return absl::OkStatus();
  return absl::DeadlineExceededError(
      "the call's deadline passed while it waited for the database (its statement was "
      "cancelled)");
}

bool IsValidSchemaName(absl::string_view name) {
  if (name.empty() || name.size() > 63 || absl::StartsWith(name, "pg_") ||
      name == "information_schema" || name == "public" ||
      absl::ascii_isdigit(static_cast<unsigned char>(name[0]))) {
    return false;
  }
  for (char c : name) {
    if (!(absl::ascii_islower(static_cast<unsigned char>(c)) ||
          absl::ascii_isdigit(static_cast<unsigned char>(c)) || c == '_')) {
      return false;
    }
  }
  return true;
}

namespace {

// `text` with each `approvald.` qualifier (one not inside a longer name) naming `schema`.
std::string InSchema(absl::string_view text, absl::string_view schema) {
  constexpr absl::string_view kQualifier = "approvald.";
  std::string out;
  size_t from = 0;
  for (size_t at = text.find(kQualifier); at != absl::string_view::npos;
       at = text.find(kQualifier, at + 1)) {
    const char before = at == 0 ? ' ' : text[at - 1];
    if (absl::ascii_isalnum(static_cast<unsigned char>(before)) || before == '_' || before == '.' ||
        before == '"' || before == '\'') {
      continue;
    }
    absl::StrAppend(&out, text.substr(from, at - from), schema, ".");
    from = at + kQualifier.size();
  }
  absl::StrAppend(&out, text.substr(from));
  return out;
}

}  // namespace

absl::StatusOr<std::unique_ptr<PgConnection>> PgConnection::Connect(const std::string& dsn,
                                                                    const std::string& schema) {
  // Defaults come first so that the connection string, expanded from "dbname", overrides them.
  // Keepalives and tcp_user_timeout bound how long a call can hang on a dead network peer.
  const char* keys[] = {
      "connect_timeout",  "application_name", "keepalives_idle", "keepalives_interval",
      "keepalives_count", "tcp_user_timeout", "dbname",          nullptr};
  const char* values[] = {"5", "approvald", "10", "5", "3", "30000", dsn.c_str(), nullptr};
  std::unique_ptr<pg_conn, PgConnCloser> conn(PQconnectdbParams(keys, values, /*expand_dbname=*/1));
  if (!conn) return absl::UnavailableError("out of memory creating a database connection");
  if (PQstatus(conn.get()) != CONNECTION_OK) {
    return absl::UnavailableError(
        absl::StrCat("cannot connect to the database: ", ConnectionMessage(conn.get())));
  }
  std::unique_ptr<PgConnection> out(new PgConnection(std::move(conn), schema));
  if (absl::Status st = out->ExecScript(kSessionSetup); !st.ok()) return st;
  absl::StatusOr<Rows> identity = out->Exec(queries::kConnectionIdentity, {});
  if (!identity.ok()) return identity.status();
  if (!identity->empty()) {
    absl::StatusOr<int64_t> pid = identity->GetInt(0, "pid");
    if (pid.ok()) out->backend_pid_ = static_cast<int>(*pid);
    out->backend_start_ = identity->GetString(0, "backend_start");
  }
  return out;
}

bool PgConnection::broken() const { return broken_ || PQstatus(conn_.get()) != CONNECTION_OK; }

absl::StatusOr<Rows> PgConnection::Exec(const Query& query, const Params& params) {
  RETURN_IF_ERROR(CheckNotCancelled());
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const Param& p : params) values.push_back(p ? p->c_str() : nullptr);
  const int n = static_cast<int>(values.size());
  PgResultPtr res;
  if (query.name.empty()) {
    const std::string text(query.text);
    res.reset(
        PQexecParams(conn_.get(), text.c_str(), n, nullptr, values.data(), nullptr, nullptr, 0));
  } else {
    const std::string name(query.name);
    if (absl::Status st = Prepare(query); !st.ok()) return st;
    res.reset(PQexecPrepared(conn_.get(), name.c_str(), n, values.data(), nullptr, nullptr, 0));
  }
  const ExecStatusType st = res ? PQresultStatus(res.get()) : PGRES_FATAL_ERROR;
  if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
    const char* state = res ? PQresultErrorField(res.get(), PG_DIAG_SQLSTATE) : nullptr;
    if (state != nullptr && absl::string_view(state) == "0A000" && !query.name.empty()) {
      // "cached plan must not change result type": a table changed under a prepared
      // statement (e.g. a migration added a column). Drop this connection; a retry on a fresh
      // one prepares the statement again.
      broken_ = true;
      return MarkTransient(absl::UnavailableError(
          absl::StrCat("the schema changed under prepared statement ", query.name, "; retry")));
    }
    absl::Status error = ResultError(conn_.get(), res.get(), query.name);
    // Lost, shut down, or now a read-only standby (after a failover): never reuse it.
    if (error.code() == absl::StatusCode::kUnavailable) broken_ = true;
    return error;
  }
  return ReadRows(res.get());
}

absl::StatusOr<std::vector<Rows>> PgConnection::ExecPipeline(const std::vector<Step>& steps,
                                                             bool* sent) {
  if (sent) *sent = false;
  RETURN_IF_ERROR(CheckNotCancelled());
  for (const Step& step : steps) {
    if (!step.query->name.empty()) RETURN_IF_ERROR(Prepare(*step.query));
  }
  PGconn* conn = conn_.get();
  auto lost = [&]() {
    broken_ = true;
    return MarkTransient(absl::UnavailableError(
        absl::StrCat("database connection lost: ", ConnectionMessage(conn))));
  };
  if (PQenterPipelineMode(conn) != 1) return lost();
  std::vector<const char*> values;
  for (const Step& step : steps) {
    values.clear();
    for (const Param& p : step.params) values.push_back(p ? p->c_str() : nullptr);
    const int n = static_cast<int>(values.size());
    const std::string text(step.query->name.empty() ? step.query->text : step.query->name);
    const int ok =
        step.query->name.empty()
            ? PQsendQueryParams(conn, text.c_str(), n, nullptr, values.data(), nullptr, nullptr, 0)
            : PQsendQueryPrepared(conn, text.c_str(), n, values.data(), nullptr, nullptr, 0);
    if (ok != 1) return lost();
  }
  if (PQpipelineSync(conn) != 1) return lost();
  if (sent) *sent = true;

  std::vector<Rows> out;
  out.reserve(steps.size());
  absl::Status first_error;
  for (const Step& step : steps) {
    PgResultPtr res(PQgetResult(conn));
    if (!res) return lost();
    const ExecStatusType st = PQresultStatus(res.get());
    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
      out.push_back(ReadRows(res.get()));
    } else if (st != PGRES_PIPELINE_ABORTED && first_error.ok()) {
      first_error = ResultError(conn, res.get(), step.query->name);
      if (PQstatus(conn) == CONNECTION_BAD) return lost();
    }
    // Each statement's results end with a null result.
    while (PGresult* extra = PQgetResult(conn)) PQclear(extra);
  }
  PgResultPtr sync(PQgetResult(conn));
  if (!sync || PQresultStatus(sync.get()) != PGRES_PIPELINE_SYNC) return lost();
  if (PQexitPipelineMode(conn) != 1) return lost();
  if (!first_error.ok()) {
    if (first_error.code() == absl::StatusCode::kUnavailable) broken_ = true;
    return first_error;
  }
  return out;
}

absl::Status PgConnection::Prepare(const Query& query) {
  const std::string name(query.name);
  if (prepared_.contains(name)) return absl::OkStatus();
  const std::string text =
      schema_ == kDefaultSchema ? std::string(query.text) : InSchema(query.text, schema_);
  PgResultPtr prep(PQprepare(conn_.get(), name.c_str(), text.c_str(), 0, nullptr));
  if (!prep || PQresultStatus(prep.get()) != PGRES_COMMAND_OK) {
    return ResultError(conn_.get(), prep.get(), query.name);
  }
  prepared_.insert(name);
  return absl::OkStatus();
}

absl::Status PgConnection::ExecScript(absl::string_view sql) {
  RETURN_IF_ERROR(CheckNotCancelled());
  const std::string text(sql);
  PgResultPtr res(PQexec(conn_.get(), text.c_str()));
  const ExecStatusType st = res ? PQresultStatus(res.get()) : PGRES_FATAL_ERROR;
  if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
    absl::Status error = ResultError(conn_.get(), res.get(), "");
    if (error.code() == absl::StatusCode::kUnavailable) broken_ = true;
    return error;
  }
  return absl::OkStatus();
}

}  // namespace approvald::db::pg
