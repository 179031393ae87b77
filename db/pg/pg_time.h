#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "db/rows.h"

namespace approvald::db::pg {

/// Parses a timestamptz in the session's format (ISO, UTC): "2026-11-28 00:45:49.123456+00".
absl::StatusOr<absl::Time> ParsePgTimestamp(absl::string_view text);

/// The timestamptz of a row's column; nullopt for NULL.
absl::StatusOr<std::optional<absl::Time>> OptionalPgTimestamp(const Rows& rows, size_t row,
                                                              absl::string_view column);

/// Micros since the Unix epoch, the form in which times are bound as parameters.
int64_t ToMicros(absl::Time t);

/// Whole milliseconds, the form in which durations are bound (`$n::bigint * interval '1 ms'`).
std::string MillisParam(absl::Duration d);

}  // namespace approvald::db::pg
