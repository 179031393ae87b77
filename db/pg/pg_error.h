#pragma once

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace approvald::db::pg {

/// The one mapping from SQLSTATE to a status code (see the design's error table).
absl::StatusCode CodeForSqlState(absl::string_view sqlstate);

/// Marks an error as transient: the whole transaction may be re-run (serialization failure,
/// deadlock, a connection lost before COMMIT was sent).
absl::Status MarkTransient(absl::Status status);
[[nodiscard]] bool IsTransient(const absl::Status& status);

/// The server process of a connection, as PgConnection read it at connect.
struct BackendIdentity {
  int pid = 0;
  std::string start;  ///< backend_start, text
};

/// UNKNOWN: the connection broke while COMMIT was in flight; the status names the backend that
/// was running the transaction, so that its outcome can be settled and read back.
absl::Status CommitOutcomeUnknown(const BackendIdentity& backend);
/// The backend of a CommitOutcomeUnknown status; nullopt for any other status.
[[nodiscard]] std::optional<BackendIdentity> LostCommitBackend(const absl::Status& status);

}  // namespace approvald::db::pg
