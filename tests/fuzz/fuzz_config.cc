// The action types config (server/action_config): the input is the YAML file's content, parsed
// with ParseActionConfig as LoadActionConfig and a reload do after reading the file.
//
// Invariants: no exception escapes; every error is INVALID_ARGUMENT starting with the source
// name; an accepted config holds only types the rest of the server can use (valid names, a
// handler, sane policy, a JSON Schema that converts to JSON, sql statements with distinct
// prepared statement names), and ValidateParameters on a few payloads answers OK or a
// BadRequest.

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "absl/strings/match.h"
#include "handlers/action_config.h"
#include "handlers/action_type.h"
#include "handlers/handler_registry.h"
#include "handlers/noop_handler.h"
#include "server/api/proto_convert.h"
#include "tests/fuzz/fuzz_support.h"

namespace approvald::fuzz {
namespace {

const handlers::CppHandlers& Handlers() {
  static const auto* handlers =
      new handlers::CppHandlers{{"test.cpp", std::make_shared<handlers::NoopHandler>()}};
  return *handlers;
}

// Payloads for ValidateParameters: one of each kind under common parameter names.
const std::vector<pb::Struct>& Payloads() {
  static const auto* payloads = [] {
    auto* out = new std::vector<pb::Struct>;
    for (const char* json :
         {"{}", R"({"order_id": 42, "amount_cents": 3000, "reason": "arrived late"})",
          R"({"account_id": 7, "role": "billing", "extra": true})",
          R"({"s": "abc", "e": "red", "i": -3, "n": 0.25, "b": false, "o": {"x": [1]}, "a": []})",
          R"({"order_id": "42", "amount_cents": 1e300, "reason": null, "p": "\u00e9\u00e9"})"}) {
      auto s = server::JsonToStruct(json);
      if (!s.ok()) std::abort();
      out->push_back(*s);
    }
    return out;
  }();
  return *payloads;
}

// Known issue 2 (regressions/fuzz_config/): the parser keeps scalars that are not UTF-8 (raw
// bytes, or "\xff" escapes), and ListActionTypes then sends them in proto3 string fields,
// which clients refuse to parse (and StructToJson drops the bad bytes from the schema).
bool TextIsUtf8(const handlers::ActionType& t) {
  bool ok = IsValidUtf8(t.description);
  for (const auto& roles : {t.policy.approver_roles, t.policy.requester_roles}) {
    for (const std::string& r : roles) ok = ok && IsValidUtf8(r);
  }
  for (const handlers::ParameterSpec& p : t.parameters) {
    ok = ok && IsValidUtf8(p.pattern);
    for (const pb::Value& e : p.enum_values) ok = ok && IsValidUtf8(e.string_value());
  }
  return ok;
}

void CheckType(const handlers::ActionType& t, std::map<std::string, std::string>& statement_names) {
  FUZZ_CHECK(TextIsUtf8(t),
             "%s: the config holds text that is not UTF-8, which ListActionTypes sends in proto3 "
             "string fields",
             t.name.c_str());
  FUZZ_CHECK(handlers::IsValidActionType(t.name), "type name %s", t.name.c_str());
  FUZZ_CHECK(t.handler != nullptr, "%s has no handler", t.name.c_str());
  FUZZ_CHECK(t.handler_kind == "noop" || t.handler_kind == "sql" || t.handler_kind == "test.cpp",
             "handler kind %s", t.handler_kind.c_str());
  FUZZ_CHECK(t.policy.required_approvals >= 1 && t.policy.required_approvals <= 100,
             "required_approvals");
  if (t.policy.default_ttl) FUZZ_CHECK(*t.policy.default_ttl > absl::ZeroDuration(), "ttl");
  if (t.policy.max_ttl) FUZZ_CHECK(*t.policy.max_ttl > absl::ZeroDuration(), "max_ttl");
  if (t.policy.default_ttl && t.policy.max_ttl) {
    FUZZ_CHECK(*t.policy.default_ttl <= *t.policy.max_ttl, "default_ttl > max_ttl");
  }
  std::set<std::string> names;
  for (const handlers::ParameterSpec& p : t.parameters) {
    FUZZ_CHECK(names.insert(p.name).second, "parameter %s twice", p.name.c_str());
    FUZZ_CHECK(!p.minimum || !p.maximum || *p.minimum <= *p.maximum, "minimum > maximum");
    FUZZ_CHECK(p.pattern.empty() == (p.pattern_re == nullptr), "pattern without RE2");
  }
  // ListActionTypes: the schema and the ttls as protos, printed as JSON by `approvalctl types`.
  const pb::Struct schema = handlers::ParametersSchema(t);
  absl::StatusOr<std::string> json = server::StructToJson(schema);
  FUZZ_CHECK(json.ok(), "%s: schema as JSON: %s", t.name.c_str(),
             std::string(json.status().message()).c_str());
  absl::StatusOr<pb::Struct> back = server::JsonToStruct(*json);
  FUZZ_CHECK(back.ok() && SameMessage(*back, schema), "schema JSON round trip: %s\n  from %s",
             json->c_str(), schema.ShortDebugString().c_str());
  for (const auto& ttl : {t.policy.default_ttl, t.policy.max_ttl}) {
    if (!ttl) continue;
    const pb::Duration d = server::ToDuration(*ttl);
    FUZZ_CHECK(absl::AbsDuration(server::FromDuration(d) - *ttl) < absl::Nanoseconds(1),
               "ttl as a proto Duration");
  }
  // Prepared statement names: the same name must never stand for two texts.
  for (const db::Query& q : t.handler->Statements()) {
    FUZZ_CHECK(q.name.size() <= 63, "statement name longer than PostgreSQL keeps");
    auto [it, inserted] = statement_names.emplace(std::string(q.name), std::string(q.text));
    FUZZ_CHECK(inserted || it->second == q.text, "two statements named %s",
               std::string(q.name).c_str());
  }
  for (const pb::Struct& payload : Payloads()) {
    absl::Status st = handlers::ValidateParameters(t, payload);
    if (!st.ok()) CheckRejection(st);
  }
}

}  // namespace
}  // namespace approvald::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace approvald;
  const std::string yaml(reinterpret_cast<const char*>(data), size);
  auto registry = handlers::ParseActionConfig(yaml, "fuzz.yaml", fuzz::Handlers());
  if (!registry.ok()) {
    FUZZ_CHECK(registry.status().code() == absl::StatusCode::kInvalidArgument, "code %d",
               static_cast<int>(registry.status().code()));
    FUZZ_CHECK(absl::StartsWith(registry.status().message(), "fuzz.yaml"),
               "error without the source: %s", std::string(registry.status().message()).c_str());
    return 0;
  }
  std::map<std::string, std::string> statement_names;
  for (const handlers::ActionType* t : (*registry)->All()) fuzz::CheckType(*t, statement_names);
  return 0;
}
