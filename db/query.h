#pragma once

#include "absl/strings/string_view.h"

namespace approvald::db {

/// A named SQL statement with `$n` parameters. The name keys the prepared statement on each
/// connection, so two different texts must never share a name. The project's own statements
/// come from the generated catalogue `db/queries.h` (one file per statement in db/queries/).
struct Query {
  absl::string_view name;
  absl::string_view text;
};

}  // namespace approvald::db
