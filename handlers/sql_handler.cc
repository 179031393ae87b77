#include "handlers/sql_handler.h"

#include <google/protobuf/struct.pb.h>

#include <algorithm>
#include <cmath>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "db/status_macros.h"
#include "db/struct_json.h"

namespace approvald::handlers {
namespace {

namespace pb = google::protobuf;

constexpr const char* kBuiltins[] = {"approval_id", "requested_by", "decided_by", "action_data"};

// PostgreSQL type OIDs typed in results.
constexpr uint32_t kBoolOid = 16, kInt8Oid = 20, kInt2Oid = 21, kInt4Oid = 23, kOidOid = 26,
                   kJsonOid = 114, kJsonbOid = 3802;

// A statement name that changes when the text does, so a reloaded config never reuses a name
// that a connection prepared for another text.
std::string StatementName(const std::string& action_type, size_t index, const std::string& text) {
  // Fixed length: PostgreSQL truncates statement names at 63 bytes.
  return absl::StrFormat("op_%016x_%d",
                         std::hash<std::string>{}(absl::StrCat(action_type, "\n", text)), index);
}

db::Param ValueToParam(const pb::Value& v) {
  switch (v.kind_case()) {
    case pb::Value::kStringValue:
      return v.string_value();
    case pb::Value::kNumberValue: {
      const double d = v.number_value();
      if (std::trunc(d) == d && std::fabs(d) < 9.2e18) return absl::StrCat(static_cast<int64_t>(d));
      return absl::StrFormat("%.17g", d);
    }
    case pb::Value::kBoolValue:
      return std::string(v.bool_value() ? "true" : "false");
    case pb::Value::kStructValue:
    case pb::Value::kListValue: {
      std::string json;
      if (!db::AppendJson(v, &json).ok()) return std::nullopt;  // validated: cannot happen
      return json;
    }
    default:
      return std::nullopt;
  }
}

pb::Value CellToValue(const db::Param& cell, uint32_t type) {
  pb::Value v;
  if (!cell) {
    v.set_null_value(pb::NULL_VALUE);
    return v;
  }
  int64_t i = 0;
  switch (type) {
    case kBoolOid:
      v.set_bool_value(*cell == "t");
      return v;
    case kInt2Oid:
    case kInt4Oid:
    case kInt8Oid:
    case kOidOid:
      if (absl::SimpleAtoi(*cell, &i) && std::llabs(i) <= 9007199254740991LL) {
        v.set_number_value(static_cast<double>(i));
        return v;
      }
      break;
    case kJsonOid:
    case kJsonbOid:
      if (absl::StatusOr<pb::Value> parsed = db::ParseJson(*cell); parsed.ok()) return *parsed;
      break;
    default:
      break;
  }
  v.set_string_value(*cell);
  return v;
}

}  // namespace

bool ExpectRows::Matches(int64_t rows) const {
  switch (kind) {
    case Kind::kAny:
      return true;
    case Kind::kExactly:
      return rows == n;
    case Kind::kAtLeast:
      return rows >= n;
    case Kind::kAtMost:
      return rows <= n;
  }
  return true;
}

std::string ExpectRows::Describe() const {
  switch (kind) {
    case Kind::kExactly:
      return absl::StrCat("exactly ", n);
    case Kind::kAtLeast:
      return absl::StrCat("at least ", n);
    case Kind::kAtMost:
      return absl::StrCat("at most ", n);
    default:
      return "any number of";
  }
}

absl::StatusOr<std::shared_ptr<SqlHandler>> SqlHandler::Create(
    const std::string& action_type, const std::vector<SqlStatementSpec>& statements,
    const std::vector<std::string>& parameters) {
  std::shared_ptr<SqlHandler> h(new SqlHandler(action_type));
  if (statements.empty())
    return absl::InvalidArgumentError("a sql action needs at least one statement");
  for (size_t i = 0; i < statements.size(); ++i) {
    absl::StatusOr<CompiledSql> compiled = CompileNamedPlaceholders(statements[i].sql);
    if (!compiled.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("sql[", i, "]: ", compiled.status().message()));
    }
    for (const std::string& name : compiled->names) {
      const bool known =
          std::find(parameters.begin(), parameters.end(), name) != parameters.end() ||
          std::find(std::begin(kBuiltins), std::end(kBuiltins), name) != std::end(kBuiltins);
      if (!known) {
        return absl::InvalidArgumentError(
            absl::StrCat("sql[", i, "]: placeholder :", name,
                         " is neither a declared parameter nor one of :approval_id, :requested_by, "
                         ":decided_by, :action_data"));
      }
    }
    h->statements_.push_back(Compiled{StatementName(action_type, i, compiled->text),
                                      std::move(*compiled), statements[i].expect});
  }
  return h;
}

absl::Status SqlHandler::Validate(const pb::Struct&) const { return absl::OkStatus(); }

std::vector<db::Query> SqlHandler::Statements() const {
  std::vector<db::Query> out;
  for (const Compiled& c : statements_) out.push_back(db::Query{c.name, c.sql.text});
  return out;
}

absl::StatusOr<pb::Struct> SqlHandler::Execute(db::Tx& tx, const db::ApprovalRecord& approval) {
  absl::StatusOr<pb::Struct> parsed = db::ParseJsonObject(approval.action_data_json);
  if (!parsed.ok()) return absl::InternalError("stored action_data is not a JSON object");
  const pb::Struct& data = *parsed;
  pb::Struct result;
  pb::ListValue* results = (*result.mutable_fields())["statements"].mutable_list_value();
  for (size_t i = 0; i < statements_.size(); ++i) {
    const Compiled& c = statements_[i];
    db::Params params;
    for (const std::string& name : c.sql.names) {
      if (name == "approval_id") {
        params.emplace_back(approval.id);
      } else if (name == "requested_by") {
        params.emplace_back(approval.requested_by);
      } else if (name == "decided_by") {
        params.emplace_back(approval.decided_by);
      } else if (name == "action_data") {
        params.emplace_back(approval.action_data_json);
      } else {
        auto it = data.fields().find(name);
        params.push_back(it == data.fields().end() ? db::Param() : ValueToParam(it->second));
      }
    }
    absl::StatusOr<db::Rows> rows = tx.Exec(db::Query{c.name, c.sql.text}, params);
    if (!rows.ok()) {
      absl::Status error(rows.status().code(),
                         absl::StrCat("statement ", i + 1, ": ", rows.status().message()));
      // Keep the payloads (e.g. the transient mark of a deadlock, so the decision is retried).
      rows.status().ForEachPayload([&](absl::string_view url, const absl::Cord& payload) {
        error.SetPayload(url, payload);
      });
      return error;
    }
    if (!c.expect.Matches(rows->affected())) {
      return absl::FailedPreconditionError(absl::StrCat("statement ", i + 1, " affected ",
                                                        rows->affected(), " rows, expected ",
                                                        c.expect.Describe()));
    }
    auto& out = *results->add_values()->mutable_struct_value()->mutable_fields();
    out["row_count"].set_number_value(static_cast<double>(rows->affected()));
    pb::ListValue* out_rows = out["rows"].mutable_list_value();
    for (size_t r = 0; r < rows->size() && r < kMaxResultRows; ++r) {
      auto& row = *out_rows->add_values()->mutable_struct_value()->mutable_fields();
      for (size_t col = 0; col < rows->columns().size(); ++col) {
        const uint32_t type = col < rows->types().size() ? rows->types()[col] : 0;
        row[rows->columns()[col]] = CellToValue(rows->At(r, col), type);
      }
    }
  }
  return result;
}

}  // namespace approvald::handlers
