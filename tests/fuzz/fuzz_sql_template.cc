// The `sql` handler's statements (handlers/sql_template, handlers/sql_handler): the input is
// `<statement>` or `<statement>\0<JSON>`. The statement goes through
// CompileNamedPlaceholders and SqlHandler::Create (as a config's sql: entry), then the handler
// runs against a RecordingTx, as when an approval is approved, with the JSON as action_data (or
// values generated for the placeholders when there is none or it would not pass validation);
// the RecordingTx answers with rows whose json/jsonb, integer and text cells hold the JSON.
//
// Invariants: names are distinct identifiers, numbered by first occurrence; every $1..$n occurs
// in the text; a text without `:` is left as it is; Create accepts exactly the statements
// that compile (with their names declared); the handler binds one parameter per name, each the
// value of action_data (or the built-in) as PostgreSQL text of the same value; the execution
// result converts to JSON.

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "handlers/sql_handler.h"
#include "handlers/sql_template.h"
#include "server/api/proto_convert.h"
#include "server/api/validation.h"
#include "tests/fuzz/fuzz_support.h"

namespace approvald::fuzz {
namespace {

constexpr const char* kBuiltins[] = {"approval_id", "requested_by", "decided_by", "action_data"};

bool IsBuiltin(const std::string& name) {
  for (const char* b : kBuiltins) {
    if (name == b) return true;
  }
  return false;
}

bool IsIdentifier(const std::string& s) {
  if (s.empty() || !(absl::ascii_isalpha(static_cast<unsigned char>(s[0])) || s[0] == '_')) {
    return false;
  }
  for (char c : s) {
    if (!(absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_')) return false;
  }
  return true;
}

// "$k" not followed by another digit.
bool HasParam(const std::string& text, size_t k) {
  const std::string p = absl::StrCat("$", k);
  for (size_t at = text.find(p); at != std::string::npos; at = text.find(p, at + 1)) {
    const size_t end = at + p.size();
    if (end == text.size() || !absl::ascii_isdigit(static_cast<unsigned char>(text[end]))) {
      return true;
    }
  }
  return false;
}

// A value of each kind in turn for the placeholders (the last kind: absent).
pb::Struct Generated(const std::vector<std::string>& names) {
  pb::Struct data;
  auto& f = *data.mutable_fields();
  for (size_t i = 0; i < names.size(); ++i) {
    if (IsBuiltin(names[i])) continue;
    pb::Value& v = f[names[i]];
    switch (i % 10) {
      case 0:
        v.set_string_value("it's a \"value\" :x $1 $$ -- /*");
        break;
      case 1:
        v.set_number_value(42);
        break;
      case 2:
        v.set_number_value(-9007199254740991.0);
        break;
      case 3:
        v.set_number_value(0.1);
        break;
      case 4:
        v.set_number_value(1e300);
        break;
      case 5:
        v.set_bool_value(true);
        break;
      case 6:
        v.set_null_value(pb::NULL_VALUE);
        break;
      case 7:
        (*v.mutable_struct_value()->mutable_fields())["k"].set_string_value("\u00e9");
        break;
      case 8:
        v.mutable_list_value()->add_values()->set_number_value(-0.0);
        break;
      default:
        f.erase(names[i]);
    }
  }
  return data;
}

void Check(const std::string& sql, const std::string* json) {
  absl::StatusOr<handlers::CompiledSql> compiled = handlers::CompileNamedPlaceholders(sql);
  std::vector<std::string> declared;
  if (compiled.ok()) {
    std::set<std::string> seen;
    for (const std::string& name : compiled->names) {
      FUZZ_CHECK(IsIdentifier(name), "name \"%s\"", name.c_str());
      FUZZ_CHECK(seen.insert(name).second, "name %s twice", name.c_str());
      if (!IsBuiltin(name)) declared.push_back(name);
    }
    for (size_t k = 1; k <= compiled->names.size(); ++k) {
      FUZZ_CHECK(HasParam(compiled->text, k), "$%zu missing from \"%s\"", k,
                 compiled->text.c_str());
    }
    if (sql.find(':') == std::string::npos) {
      FUZZ_CHECK(compiled->text == sql && compiled->names.empty(), "text without : changed");
    }
  } else {
    FUZZ_CHECK(compiled.status().code() == absl::StatusCode::kInvalidArgument, "code");
  }

  // As a config's statement, with every placeholder declared as a parameter.
  handlers::SqlStatementSpec spec;
  spec.sql = sql;
  auto handler = handlers::SqlHandler::Create("fuzz.sql", {spec, spec}, declared);
  FUZZ_CHECK(handler.ok() == compiled.ok(), "Create and CompileNamedPlaceholders disagree");
  if (!handler.ok()) return;
  const std::vector<db::Query> statements = (*handler)->Statements();
  FUZZ_CHECK(statements.size() == 2 && statements[0].text == compiled->text &&
                 statements[0].name != statements[1].name && statements[0].name.size() <= 63,
             "prepared statements");

  // The approved action, as the store runs it: the input's action_data if it would pass
  // validation at create, else values generated for the placeholders.
  pb::Struct data = Generated(compiled->names);
  if (json != nullptr) {
    absl::StatusOr<pb::Struct> parsed = server::JsonToStruct(*json);
    if (parsed.ok() && server::ValidateActionData(*parsed, server::Limits()).ok()) {
      data = std::move(*parsed);
    }
  }
  FUZZ_CHECK(server::ValidateActionData(data, server::Limits()).ok(), "generated action_data");
  db::ApprovalRecord record;
  record.id = "5a3e5ca8-490b-4c47-a759-cd3b19f2f271";
  record.action_type = "fuzz.sql";
  record.action_data_json = *server::StructToJson(data);
  record.requested_by = "agent";
  record.decided_by = "alice";
  // Rows back: each typed column the handler converts, with text from the input.
  const std::string cell = json != nullptr ? *json : sql;
  RecordingTx tx(
      db::Rows({"b", "i", "j", "t", "n"},
               {{std::string("t"), std::string("9007199254740993"), cell, cell, std::nullopt},
                {std::string("f"), cell.substr(0, 20), std::string(R"({"a": [1, 2.5, "x"]})"),
                 std::string(""), std::string("-12")}},
               2, {16, 20, 3802, 25, 23}));
  absl::StatusOr<pb::Struct> result = (*handler)->Execute(tx, record);
  FUZZ_CHECK(result.ok(), "Execute: %s", std::string(result.status().message()).c_str());
  FUZZ_CHECK(tx.calls.size() == 2, "statements run");
  for (const RecordingTx::Call& call : tx.calls) {
    FUZZ_CHECK(call.text == compiled->text, "text run");
    FUZZ_CHECK(call.params.size() == compiled->names.size(), "%zu parameters for %zu names",
               call.params.size(), compiled->names.size());
    for (size_t i = 0; i < compiled->names.size(); ++i) {
      const std::string& name = compiled->names[i];
      if (name == "approval_id") {
        FUZZ_CHECK(call.params[i] == record.id, ":approval_id");
      } else if (name == "requested_by") {
        FUZZ_CHECK(call.params[i] == record.requested_by, ":requested_by");
      } else if (name == "decided_by") {
        FUZZ_CHECK(call.params[i] == record.decided_by, ":decided_by");
      } else if (name == "action_data") {
        FUZZ_CHECK(call.params[i] == record.action_data_json, ":action_data");
      } else {
        auto it = data.fields().find(name);
        CheckBoundParam(name, it == data.fields().end() ? nullptr : &it->second, call.params[i]);
      }
    }
  }
  // approval_service stores the result as JSON (execution_result).
  absl::StatusOr<std::string> result_json = server::StructToJson(*result);
  FUZZ_CHECK(result_json.ok(), "execution result has no JSON: %s",
             std::string(result_json.status().message()).c_str());
}

}  // namespace
}  // namespace approvald::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  const size_t nul = input.find('\0');
  if (nul == std::string::npos) {
    approvald::fuzz::Check(input, nullptr);
  } else {
    const std::string json = input.substr(nul + 1);
    approvald::fuzz::Check(input.substr(0, nul), &json);
  }
  return 0;
}
