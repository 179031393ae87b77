#pragma once

#include <google/protobuf/struct.pb.h>

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace approvald::db {

/// JSON text <-> google.protobuf.Struct, for the jsonb columns that hold action_data, execution
/// results, votes and event snapshots. A direct writer and parser: protobuf's own JSON utilities
/// go through a type resolver and cost more CPU than the rest of a decision (tests/perf).

/// Appends `value` as compact JSON. INVALID_ARGUMENT if it has no JSON form: a number that is NaN
/// or infinite, or a Value with no kind set. Bytes of a string that are not UTF-8 are written
/// as U+FFFD.
absl::Status AppendJson(const google::protobuf::Value& value, std::string* out);
absl::Status AppendJson(const google::protobuf::Struct& value, std::string* out);

/// Parses one JSON value (RFC 8259; UTF-8 text, surrogate pairs joined). INVALID_ARGUMENT with
/// the byte offset for anything else, including trailing text and nesting deeper than 1,000.
absl::StatusOr<google::protobuf::Value> ParseJson(absl::string_view text);
/// As ParseJson, for text that must hold an object.
absl::StatusOr<google::protobuf::Struct> ParseJsonObject(absl::string_view text);

}  // namespace approvald::db
