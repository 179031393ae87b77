#pragma once

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace approvald::db::pg {

/// The one mapping from SQLSTATE to a status code (see the design's error table).
absl::StatusCode CodeForSqlState(absl::string_view sqlstate);

/// Marks an error as transient: the whole transaction may be re-run (serialization failure,
/// deadlock, a connection lost before COMMIT was sent).
absl::Status MarkTransient(absl::Status status);
bool IsTransient(const absl::Status& status);

}  // namespace approvald::db::pg
