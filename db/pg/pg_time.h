#pragma once

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace approvald::db::pg {

/// Parses a timestamptz in the session's format (ISO, UTC): "2026-11-28 00:45:49.123456+00".
absl::StatusOr<absl::Time> ParsePgTimestamp(absl::string_view text);

/// Micros since the Unix epoch, the form in which times are bound as parameters.
int64_t ToMicros(absl::Time t);

}  // namespace approvald::db::pg
