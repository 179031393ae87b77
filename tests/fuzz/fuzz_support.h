#pragma once

// Helpers shared by the libFuzzer targets in tests/fuzz. A broken invariant prints what broke
// and aborts, which libFuzzer reports as a crash and saves the input.

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/stubs/logging.h>
#include <google/protobuf/util/json_util.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "db/errors.h"
#include "db/tx.h"
#include "db/utf8.h"
#include "google/rpc/status.pb.h"
#include "server/status_conversion.h"

#define FUZZ_CHECK(cond, ...)                                                              \
  do {                                                                                     \
    if (!(cond)) {                                                                         \
      std::fprintf(stderr, "FUZZ_CHECK failed at %s:%d: %s\n", __FILE__, __LINE__, #cond); \
      std::fprintf(stderr, "  " __VA_ARGS__);                                              \
      std::fprintf(stderr, "\n");                                                          \
      std::abort();                                                                        \
    }                                                                                      \
  } while (0)

namespace approvald::fuzz {

namespace pb = google::protobuf;

// libprotobuf logs every string with invalid UTF-8 it parses or prints; fuzzing makes many.
inline const bool kQuietProtobuf =
    (pb::SetLogHandler([](pb::LogLevel, const char*, int, const std::string&) {}), true);

/// The same JSON value: equal numbers (so -0 == 0), strings, bools, objects with the same keys
/// and lists element by element. Every null is the same null (a NullValue enum number other than
/// NULL_VALUE is still JSON null), and unknown fields do not count (JSON has no place for them).
inline bool SameStruct(const pb::Struct& a, const pb::Struct& b);

inline bool SameValue(const pb::Value& a, const pb::Value& b) {
  if (a.kind_case() != b.kind_case()) return false;
  switch (a.kind_case()) {
    case pb::Value::kNumberValue:
      return a.number_value() == b.number_value();
    case pb::Value::kStringValue:
      return a.string_value() == b.string_value();
    case pb::Value::kBoolValue:
      return a.bool_value() == b.bool_value();
    case pb::Value::kStructValue:
      return SameStruct(a.struct_value(), b.struct_value());
    case pb::Value::kListValue: {
      const auto& x = a.list_value().values();
      const auto& y = b.list_value().values();
      if (x.size() != y.size()) return false;
      for (int i = 0; i < x.size(); ++i) {
        if (!SameValue(x[i], y[i])) return false;
      }
      return true;
    }
    default:  // null, or not set
      return true;
  }
}

inline bool SameStruct(const pb::Struct& a, const pb::Struct& b) {
  if (a.fields_size() != b.fields_size()) return false;
  for (const auto& [key, value] : a.fields()) {
    auto it = b.fields().find(key);
    if (it == b.fields().end() || !SameValue(value, it->second)) return false;
  }
  return true;
}

inline bool SameMessage(const pb::Struct& a, const pb::Struct& b) { return SameStruct(a, b); }
inline bool SameMessage(const pb::Value& a, const pb::Value& b) { return SameValue(a, b); }

/// Strict UTF-8: the product's own check (db/utf8.h), which its unit tests pin down.
inline bool IsValidUtf8(const std::string& s) { return db::IsValidUtf8(s); }

/// A request rejected by validation: INVALID_ARGUMENT with at least one google.rpc.BadRequest
/// violation, and a grpc::Status whose details any client can decode.
inline void CheckRejection(const absl::Status& st) {
  FUZZ_CHECK(st.code() == absl::StatusCode::kInvalidArgument, "code %d: %s",
             static_cast<int>(st.code()), std::string(st.message()).c_str());
  auto bad = db::GetBadRequest(st);
  FUZZ_CHECK(bad.has_value() && bad->field_violations_size() > 0, "no BadRequest: %s",
             std::string(st.message()).c_str());
  const grpc::Status g = server::ToGrpcStatus(st);
  FUZZ_CHECK(g.error_code() == grpc::StatusCode::INVALID_ARGUMENT, "grpc code");
  google::rpc::Status details;
  FUZZ_CHECK(details.ParseFromString(g.error_details()),
             "the google.rpc.Status details do not parse back (message: %zu bytes)",
             g.error_message().size());
  FUZZ_CHECK(IsValidUtf8(g.error_message()),
             "the grpc status message is not valid UTF-8 (%zu bytes)", g.error_message().size());
}

/// A db::Tx that records every statement and answers each with the same rows.
class RecordingTx final : public db::Tx {
 public:
  struct Call {
    std::string name;
    std::string text;
    db::Params params;
  };
  explicit RecordingTx(db::Rows rows) : rows_(std::move(rows)) {}

  absl::StatusOr<db::Rows> Exec(const db::Query& query, const db::Params& params) override {
    calls.push_back({std::string(query.name), std::string(query.text), params});
    return rows_;
  }

  std::vector<Call> calls;

 private:
  db::Rows rows_;
};

/// The sql handler bound `value` (nullptr: absent from action_data) as `param`: the text
/// PostgreSQL receives must mean the same value.
inline void CheckBoundParam(const std::string& name, const pb::Value* value,
                            const db::Param& param) {
  if (value == nullptr || value->kind_case() == pb::Value::kNullValue ||
      value->kind_case() == pb::Value::KIND_NOT_SET) {
    FUZZ_CHECK(!param.has_value(), ":%s: an absent or null value must bind NULL", name.c_str());
    return;
  }
  FUZZ_CHECK(param.has_value(), ":%s: a set value bound NULL", name.c_str());
  switch (value->kind_case()) {
    case pb::Value::kStringValue:
      FUZZ_CHECK(*param == value->string_value(), ":%s: string changed", name.c_str());
      break;
    case pb::Value::kBoolValue:
      FUZZ_CHECK(*param == (value->bool_value() ? "true" : "false"), ":%s: bool", name.c_str());
      break;
    case pb::Value::kNumberValue: {
      const double d = value->number_value();
      if (!std::isfinite(d)) break;  // validation refuses these before anything is stored
      double back = 0;
      FUZZ_CHECK(absl::SimpleAtod(*param, &back) && back == d, ":%s: number %.17g bound as \"%s\"",
                 name.c_str(), d, param->c_str());
      if (std::trunc(d) == d && std::fabs(d) < 9.0e18) {
        int64_t i = 0;
        FUZZ_CHECK(absl::SimpleAtoi(*param, &i) && static_cast<double>(i) == d,
                   ":%s: integral number %.17g bound as \"%s\" (not an integer literal)",
                   name.c_str(), d, param->c_str());
      }
      break;
    }
    case pb::Value::kStructValue:
    case pb::Value::kListValue: {
      pb::Value back;
      FUZZ_CHECK(pb::util::JsonStringToMessage(*param, &back).ok(),
                 ":%s: object/array bound as \"%s\" (not JSON)", name.c_str(), param->c_str());
      FUZZ_CHECK(SameMessage(back, *value), ":%s: object/array changed when bound", name.c_str());
      break;
    }
    default:
      break;
  }
}

}  // namespace approvald::fuzz
