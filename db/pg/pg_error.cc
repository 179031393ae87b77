#include "db/pg/pg_error.h"

#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace approvald::db::pg {
namespace {
constexpr absl::string_view kTransientUrl = "approvald/transient";
constexpr absl::string_view kLostCommitUrl = "approvald/lost-commit";
}  // namespace

absl::StatusCode CodeForSqlState(absl::string_view s) {
  if (s == "40001" || s == "40P01" || s == "55P03") return absl::StatusCode::kAborted;
  if (s == "57014") return absl::StatusCode::kDeadlineExceeded;
  if (s == "23505") return absl::StatusCode::kAlreadyExists;
  if (s == "23503" || s == "23514" || s == "23502" || s == "23P01" || s == "23001") {
    return absl::StatusCode::kFailedPrecondition;
  }
  if (absl::StartsWith(s, "08") || s == "57P01" || s == "57P02" || s == "57P03" || s == "53300" ||
      s == "25006") {  // 25006: read-only transaction (a standby after failover)
    return absl::StatusCode::kUnavailable;
  }
  if (absl::StartsWith(s, "22") || s == "P0001") return absl::StatusCode::kFailedPrecondition;
  return absl::StatusCode::kInternal;
}

absl::Status MarkTransient(absl::Status status) {
  status.SetPayload(kTransientUrl, absl::Cord("1"));
  return status;
}

bool IsTransient(const absl::Status& status) {
  return status.GetPayload(kTransientUrl).has_value();
}

absl::Status CommitOutcomeUnknown(const BackendIdentity& backend) {
  absl::Status status = absl::UnknownError(
      "commit outcome unknown: the database connection was lost while COMMIT was in flight");
  status.SetPayload(kLostCommitUrl, absl::Cord(absl::StrCat(backend.pid, "|", backend.start)));
  return status;
}

std::optional<BackendIdentity> LostCommitBackend(const absl::Status& status) {
  const auto payload = status.GetPayload(kLostCommitUrl);
  if (!payload) return std::nullopt;
  const std::string text(*payload);
  const size_t bar = text.find('|');
  BackendIdentity backend;
  if (bar == std::string::npos || !absl::SimpleAtoi(text.substr(0, bar), &backend.pid)) {
    return BackendIdentity{};
  }
  backend.start = text.substr(bar + 1);
  return backend;
}

}  // namespace approvald::db::pg
