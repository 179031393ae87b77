#pragma once

#include <string>

#include "absl/status/status.h"
#include "db/rows.h"

namespace approvald::db::pg {

/// A random (version 4) UUID in its canonical lowercase form: an approval's id, made before its
/// insert so that a create whose COMMIT is lost can be read back by it.
std::string NewUuid();

/// A random token that one decision call writes into the detail of every event it commits
/// (`call`): after a COMMIT lost with its connection it tells, alone, whether that call's own
/// decision committed. Never the actor's name: a principal may race itself.
std::string NewCallToken();

/// The answer recorded for an AIP-155 request id (a row of find_decision_request.sql),
/// rebuilt with its reason and metadata.
absl::Status ReplayOutcome(const Rows& found);

}  // namespace approvald::db::pg
