// action_data on its way into and out of PostgreSQL: google.protobuf.Struct -> JSON text
// (server/proto_convert StructToJson, stored in a jsonb column) -> the text PostgreSQL gives back
// (db/pg/approval_row: a row's action_data column, or inside an event's to_jsonb snapshot) ->
// Struct (JsonToStruct, ToProto).
//
// The first byte picks the input's form:
//   0: a serialized Struct, as it arrives in CreateApprovalRequest.action_data;
//   1: JSON text, as read back from a json/jsonb column.
// Invariants: a Struct that ValidateActionData accepts can be stored in jsonb (no NUL
// characters) and converts to JSON and back unchanged, also after PostgreSQL's jsonb rewrote the
// text (keys sorted and deduplicated, ", " and ": " separators, numbers in plain positional
// notation: 1e+300 comes back as 1 and 300 zeros), and the row and event snapshot readers give
// back the same Struct.

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "db/pg/approval_row.h"
#include "server/api/proto_convert.h"
#include "server/api/validation.h"
#include "tests/fuzz/fuzz_support.h"

namespace approvald::fuzz {
namespace {

// "%.17g" output ("-1.2345e-07", "1e+300", "42") as PostgreSQL's numeric prints it: positional,
// with the literal's own scale.
std::string Positional(const std::string& g) {
  std::string sign, digits;
  int point = 0;  // digits before the decimal point
  size_t i = 0;
  if (i < g.size() && g[i] == '-') sign = "-", ++i;
  bool seen_point = false;
  for (; i < g.size() && g[i] != 'e'; ++i) {
    if (g[i] == '.') {
      seen_point = true;
    } else {
      digits.push_back(g[i]);
      if (!seen_point) ++point;
    }
  }
  if (i < g.size()) point += std::stoi(g.substr(i + 1));
  std::string out;
  if (point <= 0) {
    out = "0." + std::string(static_cast<size_t>(-point), '0') + digits;
  } else if (static_cast<size_t>(point) >= digits.size()) {
    out = digits + std::string(static_cast<size_t>(point) - digits.size(), '0');
  } else {
    out = digits.substr(0, static_cast<size_t>(point)) + "." +
          digits.substr(static_cast<size_t>(point));
  }
  // numeric drops leading zeros of the integer part ("0012" cannot occur, "0.5" stays).
  return sign + out;
}

void JsonbString(const std::string& s, std::string& out) {
  FUZZ_CHECK(s.find('\0') == std::string::npos,
             "validated action_data holds a NUL character, which jsonb refuses (\\u0000)");
  out.push_back('"');
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          out += absl::StrFormat("\\u%04x", c);
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  out.push_back('"');
}

void JsonbValue(const pb::Value& v, std::string& out);

// jsonb keeps object keys sorted by length, then bytewise.
void JsonbObject(const pb::Struct& s, std::string& out) {
  std::vector<const std::string*> keys;
  for (const auto& [k, v] : s.fields()) keys.push_back(&k);
  std::sort(keys.begin(), keys.end(), [](const std::string* a, const std::string* b) {
    return a->size() != b->size() ? a->size() < b->size() : *a < *b;
  });
  out.push_back('{');
  for (size_t i = 0; i < keys.size(); ++i) {
    if (i) out += ", ";
    JsonbString(*keys[i], out);
    out += ": ";
    JsonbValue(s.fields().at(*keys[i]), out);
  }
  out.push_back('}');
}

void JsonbValue(const pb::Value& v, std::string& out) {
  switch (v.kind_case()) {
    case pb::Value::kNumberValue:
      out += Positional(absl::StrFormat("%.17g", v.number_value()));
      break;
    case pb::Value::kStringValue:
      JsonbString(v.string_value(), out);
      break;
    case pb::Value::kBoolValue:
      out += v.bool_value() ? "true" : "false";
      break;
    case pb::Value::kStructValue:
      JsonbObject(v.struct_value(), out);
      break;
    case pb::Value::kListValue: {
      out.push_back('[');
      const auto& values = v.list_value().values();
      for (int i = 0; i < values.size(); ++i) {
        if (i) out += ", ";
        JsonbValue(values[i], out);
      }
      out.push_back(']');
      break;
    }
    default:
      out += "null";
  }
}

constexpr char kId[] = "5a3e5ca8-490b-4c47-a759-cd3b19f2f271";

// The stored approval as get_approval.sql returns it (jsonb columns as PostgreSQL prints them).
db::Rows ApprovalRow(const std::string& action_data, const std::string& result) {
  return db::Rows(
      {"id", "action_type", "action_data", "status", "summary", "requested_by", "version",
       "created_at", "expires_at", "decided_at", "executed_at", "execution_result", "votes"},
      {{std::string(kId), std::string("refund.order"), action_data, std::string("approved"),
        std::string("s"), std::string("agent"), std::string("2"),
        std::string("2026-11-28 00:45:49.123456+00"), std::string("2026-11-29 00:45:49+00"),
        std::string("2026-11-28 01:00:00+00"), std::string("2026-11-28 01:00:00.5+00"), result,
        std::string(R"([{"voter": "alice", "micros": 1764290569123456, "comment": "ok"}])")}},
      1);
}

void CheckReadBack(const pb::Struct& data, const std::string& stored) {
  // A row of approvald.approvals.
  absl::StatusOr<db::ApprovalRecord> record =
      db::pg::ParseApprovalRow(ApprovalRow(stored, stored), 0);
  FUZZ_CHECK(record.ok(), "ParseApprovalRow: %s", std::string(record.status().message()).c_str());
  approvals::v1::Approval approval;
  absl::Status st = server::ToProto(*record, &approval);
  FUZZ_CHECK(st.ok(), "ToProto of stored %s: %s", stored.c_str(),
             std::string(st.message()).c_str());
  FUZZ_CHECK(SameMessage(approval.action_data(), data), "action_data changed in a row: %s",
             stored.c_str());
  FUZZ_CHECK(SameMessage(approval.execution_result(), data), "execution_result changed");

  // An event's snapshot: to_jsonb(row) || {"votes": [...]}.
  const std::string snapshot = absl::StrCat(
      R"({"id": ")", kId, R"(", "status": "pending", "summary": "s", "version": 1, )",
      R"("action_data": )", stored, R"(, "created_at": "2026-11-28T01:42:04.536705+00:00", )",
      R"("expires_at": "2026-11-29T01:42:04+00:00", "action_type": "refund.order", )",
      R"("requested_by": "agent", "votes": []})");
  absl::StatusOr<db::ApprovalRecord> from_event = db::pg::ParseApprovalJson(snapshot);
  FUZZ_CHECK(from_event.ok(), "ParseApprovalJson: %s",
             std::string(from_event.status().message()).c_str());
  approvals::v1::Approval event_approval;
  st = server::ToProto(*from_event, &event_approval);
  FUZZ_CHECK(st.ok(), "ToProto of a snapshot: %s", std::string(st.message()).c_str());
  FUZZ_CHECK(SameMessage(event_approval.action_data(), data), "action_data changed in an event");
}

void CheckStruct(const pb::Struct& data) {
  server::Limits limits;
  absl::Status valid = server::ValidateActionData(data, limits);
  if (!valid.ok()) {
    CheckRejection(valid);
    return;
  }
  absl::StatusOr<std::string> json = server::StructToJson(data);
  FUZZ_CHECK(json.ok(), "validated Struct has no JSON");
  absl::StatusOr<pb::Struct> back = server::JsonToStruct(*json);
  FUZZ_CHECK(back.ok(), "StructToJson output does not parse: %s", json->c_str());
  FUZZ_CHECK(SameMessage(*back, data),
             "Struct -> JSON -> Struct changed it: %s\n  from %s\n  to   %s", json->c_str(),
             data.ShortDebugString().c_str(), back->ShortDebugString().c_str());
  // Printing the parsed Struct again gives the same Struct (not the same text: map order varies
  // and -0 comes back as 0).
  absl::StatusOr<std::string> again = server::StructToJson(*back);
  FUZZ_CHECK(again.ok(), "a parsed Struct has no JSON");
  absl::StatusOr<pb::Struct> back_again = server::JsonToStruct(*again);
  FUZZ_CHECK(back_again.ok() && SameMessage(*back_again, data), "JSON not stable: %s then %s",
             json->c_str(), again->c_str());
  CheckReadBack(data, *json);

  std::string jsonb;
  JsonbObject(data, jsonb);
  absl::StatusOr<pb::Struct> from_jsonb = server::JsonToStruct(jsonb);
  FUZZ_CHECK(from_jsonb.ok(), "jsonb's rendering does not parse: %s (%s)",
             std::string(from_jsonb.status().message()).c_str(), jsonb.c_str());
  FUZZ_CHECK(SameMessage(*from_jsonb, data), "changed through jsonb's rendering: %s",
             jsonb.c_str());
  CheckReadBack(data, jsonb);
}

}  // namespace
}  // namespace approvald::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace approvald;
  if (size < 1) return 0;
  const std::string rest(reinterpret_cast<const char*>(data + 1), size - 1);
  if (data[0] % 2 == 0) {
    google::protobuf::Struct s;
    if (s.ParseFromString(rest)) fuzz::CheckStruct(s);
  } else {
    absl::StatusOr<google::protobuf::Struct> s = server::JsonToStruct(rest);
    if (s.ok()) {
      fuzz::CheckStruct(*s);
    } else {
      FUZZ_CHECK(s.status().code() == absl::StatusCode::kInternal, "JsonToStruct code");
    }
  }
  return 0;
}
