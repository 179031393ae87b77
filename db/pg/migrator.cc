#include "db/pg/migrator.h"

#include "absl/strings/str_cat.h"
#include "db/queries.h"
#include "db/status_macros.h"

namespace approvald::db::pg {
namespace {

int Newest(const std::vector<Migration>& migrations) {
  return migrations.empty() ? 0 : migrations.back().version;
}

absl::Status RefuseNewer(int current, int known) {
  return absl::FailedPreconditionError(absl::StrCat("the database schema is at version ", current,
                                                    " but this approvald knows only up to ", known,
                                                    ": upgrade approvald"));
}

// BEGIN, the migration lock, and the search_path of approvald's schema for the transaction:
// a migration creates and names its objects there, never in the application's schemas.
absl::Status Begin(PgConnection& conn) {
  RETURN_IF_ERROR(conn.ExecScript("BEGIN"));
  RETURN_IF_ERROR(conn.Exec(queries::kMigrationLock, {}).status());
  return conn.ExecScript(absl::StrCat("SET LOCAL search_path TO ", conn.schema()));
}

// Creates approvald's schema if needed, and moves a layout of an older release from public
// into it (db/queries/adopt_public_layout.sql).
absl::Status PrepareSchema(PgConnection& conn) {
  if (!IsValidSchemaName(conn.schema())) {
    return absl::InvalidArgumentError(absl::StrCat("not a valid schema name: ", conn.schema()));
  }
  RETURN_IF_ERROR(conn.ExecScript("BEGIN"));
  absl::Status st = conn.Exec(queries::kMigrationLock, {}).status();
  if (st.ok()) {
    absl::StatusOr<Rows> exists = conn.Exec(queries::kSchemaExists, {conn.schema()});
    st = exists.status();
    if (st.ok() && !exists->GetBool(0, "present")) {
      st = conn.ExecScript(absl::StrCat("CREATE SCHEMA IF NOT EXISTS ", conn.schema()));
    }
  }
  if (st.ok()) st = conn.ExecScript(absl::StrCat("SET LOCAL search_path TO ", conn.schema()));
  if (st.ok()) st = conn.ExecScript(queries::kAdoptPublicLayout.text);
  if (!st.ok()) {
    (void)conn.ExecScript("ROLLBACK");
    return absl::Status(st.code(),
                        absl::StrCat("preparing schema ", conn.schema(), ": ", st.message()));
  }
  return conn.ExecScript("COMMIT");
}

absl::Status ApplyOne(PgConnection& conn, const Migration& m, bool& applied) {
  applied = false;
  RETURN_IF_ERROR(Begin(conn));
  auto body = [&]() -> absl::Status {
    ASSIGN_OR_RETURN(int current, SchemaVersion(conn));  // re-read under the lock
    if (current >= m.version) return absl::OkStatus();
    if (current != m.version - 1) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot apply migration ", m.name, " to schema version ", current));
    }
    RETURN_IF_ERROR(conn.ExecScript(m.text));
    RETURN_IF_ERROR(
        conn.Exec(queries::kInsertSchemaMigration, {absl::StrCat(m.version), std::string(m.name)})
            .status());
    applied = true;
    return absl::OkStatus();
  };
  absl::Status st = body();
  if (!st.ok()) {
    (void)conn.ExecScript("ROLLBACK");
    applied = false;
    return absl::Status(st.code(), absl::StrCat("migration ", m.name, ": ", st.message()));
  }
  return conn.ExecScript("COMMIT");
}

}  // namespace

absl::StatusOr<int> SchemaVersion(PgConnection& conn) {
  ASSIGN_OR_RETURN(Rows exists, conn.Exec(queries::kSchemaMigrationsExists, {conn.schema()}));
  if (!exists.GetBool(0, "present")) return 0;
  ASSIGN_OR_RETURN(Rows rows, conn.Exec(queries::kSchemaVersion, {}));
  ASSIGN_OR_RETURN(int64_t version, rows.GetInt(0, "version"));
  return static_cast<int>(version);
}

absl::StatusOr<int> Migrate(PgConnection& conn, const std::vector<Migration>& migrations) {
  RETURN_IF_ERROR(PrepareSchema(conn));
  ASSIGN_OR_RETURN(int current, SchemaVersion(conn));
  if (current > Newest(migrations)) return RefuseNewer(current, Newest(migrations));
  int count = 0;
  for (const Migration& m : migrations) {
    if (m.version <= current) continue;
    bool applied = false;
    RETURN_IF_ERROR(ApplyOne(conn, m, applied));
    if (applied) ++count;
  }
  return count;
}

absl::Status CheckSchema(PgConnection& conn, const std::vector<Migration>& migrations) {
  ASSIGN_OR_RETURN(int current, SchemaVersion(conn));
  const int known = Newest(migrations);
  if (current > known) return RefuseNewer(current, known);
  if (current < known) {
    return absl::FailedPreconditionError(
        absl::StrCat("the database schema is at version ", current, ", this approvald needs ",
                     known, ": run `approvald migrate` or start with --migrate"));
  }
  return absl::OkStatus();
}

}  // namespace approvald::db::pg
