#pragma once

#include <vector>

#include "absl/status/statusor.h"
#include "db/migrations.h"
#include "db/pg/pg_connection.h"

namespace approvald::db::pg {

/// Applies the migrations the database lacks to approvald's schema (the connection's; created if
/// missing, and a layout of an older release moved into it from public first), each in its own
/// transaction under an advisory lock, with its schema_migrations row. Returns how many were
/// applied.
/// FAILED_PRECONDITION if the database is newer than `migrations` know.
absl::StatusOr<int> Migrate(PgConnection& conn, const std::vector<Migration>& migrations);

/// The schema version of the database (0 when empty).
absl::StatusOr<int> SchemaVersion(PgConnection& conn);

/// OK if the database is at exactly the newest version in `migrations`; else FAILED_PRECONDITION
/// telling the operator to migrate (older) or to upgrade approvald (newer).
absl::Status CheckSchema(PgConnection& conn, const std::vector<Migration>& migrations);

}  // namespace approvald::db::pg
