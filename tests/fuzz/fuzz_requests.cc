// Each RPC's request as the gRPC layer hands it over: the first byte picks the request type, the
// rest is its serialized proto. It goes through the same checks as in server/approval_service.cc:
// server/validation.*, then for CreateApproval the action type's ValidateParameters and the
// handler's Validate (the shipped deploy/approvald.yaml types plus one that declares every kind
// of parameter), then the JSON conversion and, for sql types, the parameter binding.
//
// Invariants: a rejection is INVALID_ARGUMENT with a BadRequest that a client can decode; what
// passes validation has the properties the later code relies on (UUID ids, known statuses,
// finite action_data that converts to JSON and back unchanged, parameters of the declared type
// bound as PostgreSQL text of the same value).

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>

#include "absl/strings/ascii.h"
#include "approvals/v1/approvals.pb.h"
#include "handlers/action_config.h"
#include "handlers/action_type.h"
#include "handlers/handler_registry.h"
#include "server/api/page_token.h"
#include "server/api/proto_convert.h"
#include "server/api/validation.h"
#include "tests/fuzz/fuzz_support.h"

namespace approvald::fuzz {
namespace {

namespace v1 = approvals::v1;

// One type with every kind of parameter and constraint, next to the shipped ones.
constexpr char kExtraTypes[] = R"yaml(
action_types:
  - name: fuzz.every_kind
    handler: sql
    parameters:
      - {name: s, type: string, max_length: 12, pattern: "[a-z]+(-[a-z0-9]+)*"}
      - {name: e, type: string, enum: [red, green, "blue sky"]}
      - {name: i, type: integer, minimum: -5, maximum: 1000000}
      - {name: n, type: number, minimum: 0.5}
      - {name: b, type: boolean, required: true}
      - {name: o, type: object}
      - {name: a, type: array}
      - {name: k, type: integer, enum: [1, 2, 3]}
    additional_parameters: false
    max_ttl: 2h
    sql:
      - "SELECT :s, :e, :i, :n, :b, :o, :a, :k, :approval_id, :requested_by, :decided_by, :action_data"
)yaml";

struct State {
  std::shared_ptr<handlers::HandlerRegistry> deploy;
  std::shared_ptr<handlers::HandlerRegistry> extra;
  server::Limits limits;
  server::PageTokenCodec page_tokens{"fuzz-page-token-key"};

  const handlers::ActionType* Find(const std::string& name) const {
    if (const handlers::ActionType* t = deploy->Find(name)) return t;
    return extra->Find(name);
  }
};

const State* g_state = nullptr;

std::shared_ptr<handlers::HandlerRegistry> MustParse(
    absl::StatusOr<std::shared_ptr<handlers::HandlerRegistry>> r, const char* what) {
  if (!r.ok()) {
    std::fprintf(stderr, "fuzz_requests: cannot load %s: %s\n", what,
                 std::string(r.status().message()).c_str());
    std::abort();
  }
  return *r;
}

// The placeholders of kExtraTypes' statement, in the order the handler binds them.
const std::vector<std::string> kEveryKindNames = {
    "s",          "e",          "i", "n", "b", "o", "a", "k", "approval_id", "requested_by",
    "decided_by", "action_data"};

// The highest $n in a statement of the trusted configs (they hold no literal $ signs).
size_t MaxPlaceholder(const std::string& text) {
  size_t max = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '$') continue;
    size_t n = 0, j = i + 1;
    while (j < text.size() && absl::ascii_isdigit(static_cast<unsigned char>(text[j]))) {
      n = n * 10 + static_cast<size_t>(text[j++] - '0');
    }
    max = std::max(max, n);
  }
  return max;
}

// The approved action as the sql handler runs it (RecordingTx instead of PostgreSQL).
void CheckBinding(const handlers::ActionType& type, const std::string& json) {
  db::ApprovalRecord record;
  record.id = "5a3e5ca8-490b-4c47-a759-cd3b19f2f271";
  record.action_type = type.name;
  record.action_data_json = json;
  record.requested_by = "agent";
  record.decided_by = "alice";
  RecordingTx tx(db::Rows({"id"}, {{std::string("1")}}, 1));
  absl::StatusOr<pb::Struct> result = type.handler->Execute(tx, record);
  if (type.handler_kind != "sql") return;
  FUZZ_CHECK(result.ok(), "%s: Execute: %s", type.name.c_str(),
             std::string(result.status().message()).c_str());
  FUZZ_CHECK(server::StructToJson(*result).ok(), "execution result as JSON");
  const std::vector<db::Query> statements = type.handler->Statements();
  FUZZ_CHECK(tx.calls.size() == statements.size(), "statement count");
  for (size_t i = 0; i < tx.calls.size(); ++i) {
    FUZZ_CHECK(tx.calls[i].text == statements[i].text, "statement text");
    FUZZ_CHECK(tx.calls[i].params.size() == MaxPlaceholder(tx.calls[i].text),
               "%s: %zu parameters for a statement with $1..$%zu", type.name.c_str(),
               tx.calls[i].params.size(), MaxPlaceholder(tx.calls[i].text));
  }
  if (type.name != "fuzz.every_kind") return;
  absl::StatusOr<pb::Struct> data = server::JsonToStruct(json);
  FUZZ_CHECK(data.ok(), "stored JSON");
  const db::Params& params = tx.calls[0].params;
  FUZZ_CHECK(params.size() == kEveryKindNames.size(), "fuzz.every_kind parameters");
  for (size_t i = 0; i < kEveryKindNames.size() - 4; ++i) {  // the declared ones
    auto it = data->fields().find(kEveryKindNames[i]);
    CheckBoundParam(kEveryKindNames[i], it == data->fields().end() ? nullptr : &it->second,
                    params[i]);
  }
  FUZZ_CHECK(params[8] == record.id && params[9] == record.requested_by &&
                 params[10] == record.decided_by && params[11] == json,
             "built-in placeholders");
}

void CheckCreate(const v1::CreateApprovalRequest& req) {
  const State& s = *g_state;
  absl::Status st = server::ValidateCreate(req, s.limits);
  if (!st.ok()) {
    CheckRejection(st);
    return;
  }
  FUZZ_CHECK(handlers::IsValidActionType(req.action_type()), "action_type passed");
  // CreateWork stores StructToJson(action_data); ToProto reads it back.
  absl::StatusOr<std::string> json = server::StructToJson(req.action_data());
  FUZZ_CHECK(json.ok(), "validated action_data does not convert to JSON: %s",
             std::string(json.status().message()).c_str());
  FUZZ_CHECK(json->size() <= s.limits.max_action_data_bytes, "action_data size limit");
  absl::StatusOr<pb::Struct> back = server::JsonToStruct(*json);
  FUZZ_CHECK(back.ok(), "JSON of validated action_data does not parse back: %s",
             std::string(back.status().message()).c_str());
  FUZZ_CHECK(SameMessage(*back, req.action_data()),
             "action_data changed through JSON: %s\n  from %s", json->c_str(),
             req.action_data().ShortDebugString().c_str());
  if (req.has_expire_time()) {
    const pb::Timestamp again = server::ToTimestamp(server::FromTimestamp(req.expire_time()));
    FUZZ_CHECK(again.seconds() == req.expire_time().seconds() &&
                   again.nanos() == req.expire_time().nanos() / 1000 * 1000,
               "expire_time does not survive absl::Time");
  }
  if (req.has_ttl()) {
    FUZZ_CHECK(server::FromDuration(req.ttl()) >= absl::Milliseconds(1), "ttl passed below 1ms");
  }

  const handlers::ActionType* type = s.Find(req.action_type());
  if (type == nullptr) return;
  const absl::Duration max_ttl = type->policy.max_ttl.value_or(s.limits.max_ttl);
  if (req.has_ttl() && server::FromDuration(req.ttl()) > max_ttl) return;  // rejected: ttl
  absl::Status params = handlers::ValidateParameters(*type, req.action_data());
  if (!params.ok()) {
    CheckRejection(params);
    FUZZ_CHECK(db::GetReason(params) == v1::INVALID_ACTION_DATA, "reason");
    return;
  }
  FUZZ_CHECK(type->handler->Validate(req.action_data()).ok(), "handler Validate");
  // What ValidateParameters promises.
  const auto& fields = req.action_data().fields();
  for (const handlers::ParameterSpec& p : type->parameters) {
    auto it = fields.find(p.name);
    const bool present = it != fields.end() && it->second.kind_case() != pb::Value::kNullValue;
    FUZZ_CHECK(present || !p.required, "required %s missing", p.name.c_str());
    if (!present) continue;
    const pb::Value& v = it->second;
    switch (p.type) {
      case handlers::ParamType::kString:
        FUZZ_CHECK(v.has_string_value(), "%s: string", p.name.c_str());
        break;
      case handlers::ParamType::kInteger:
        FUZZ_CHECK(v.kind_case() == pb::Value::kNumberValue &&
                       std::trunc(v.number_value()) == v.number_value() &&
                       std::fabs(v.number_value()) <= 9007199254740991.0,
                   "%s: integer", p.name.c_str());
        break;
      case handlers::ParamType::kNumber:
        FUZZ_CHECK(v.kind_case() == pb::Value::kNumberValue, "%s: number", p.name.c_str());
        break;
      case handlers::ParamType::kBoolean:
        FUZZ_CHECK(v.has_bool_value(), "%s: boolean", p.name.c_str());
        break;
      case handlers::ParamType::kObject:
        FUZZ_CHECK(v.has_struct_value(), "%s: object", p.name.c_str());
        break;
      case handlers::ParamType::kArray:
        FUZZ_CHECK(v.has_list_value(), "%s: array", p.name.c_str());
        break;
    }
    if (v.kind_case() == pb::Value::kNumberValue) {
      FUZZ_CHECK(!p.minimum || v.number_value() >= *p.minimum, "%s: minimum", p.name.c_str());
      FUZZ_CHECK(!p.maximum || v.number_value() <= *p.maximum, "%s: maximum", p.name.c_str());
    }
  }
  if (!type->additional_parameters) {
    for (const auto& [name, value] : fields) {
      bool declared = false;
      for (const auto& p : type->parameters) declared = declared || p.name == name;
      FUZZ_CHECK(declared, "undeclared field %s passed", name.c_str());
    }
  }
  CheckBinding(*type, *json);
}

void CheckList(const v1::ListApprovalsRequest& req) {
  absl::Status st = server::ValidateList(req);
  if (!st.ok()) return CheckRejection(st);
  // ListWork dereferences StatusStorageName of every status.
  for (int status : req.statuses()) {
    FUZZ_CHECK(server::StatusStorageName(static_cast<v1::ApprovalStatus>(status)).has_value(),
               "status %d passed", status);
  }
  FUZZ_CHECK(req.page_size() >= 0, "page_size");
  if (!req.page_token().empty()) {
    absl::StatusOr<db::ListCursor> cursor = g_state->page_tokens.Decode(req.page_token(), req);
    if (cursor.ok()) {
      FUZZ_CHECK(server::IsUuid(cursor->id), "decoded cursor id");
    } else {
      CheckRejection(cursor.status());
    }
  }
}

void CheckWatch(const v1::WatchApprovalsRequest& req) {
  absl::Status st = server::ValidateWatch(req);
  if (!st.ok()) return CheckRejection(st);
  for (int status : req.statuses()) {
    FUZZ_CHECK(server::StatusStorageName(static_cast<v1::ApprovalStatus>(status)).has_value(),
               "status %d passed", status);
  }
  FUZZ_CHECK(req.after_event_id() >= 0, "after_event_id");
}

template <typename Req>
void CheckDecision(const Req& req, absl::Status st) {
  if (!st.ok()) return CheckRejection(st);
  FUZZ_CHECK(server::IsUuid(req.id()), "id passed: %s", req.id().c_str());
  FUZZ_CHECK(req.expected_version() >= 0, "expected_version");
  FUZZ_CHECK(req.request_id().size() <= g_state->limits.max_key_bytes, "request_id");
}

// ListActionTypes has no fields to validate: build the response as the service does.
void CheckListActionTypes() {
  for (const auto& registry : {g_state->deploy, g_state->extra}) {
    for (const handlers::ActionType* t : registry->All()) {
      v1::ActionType out;
      out.set_name(t->name);
      *out.mutable_parameters_schema() = handlers::ParametersSchema(*t);
      *out.mutable_max_ttl() = server::ToDuration(t->policy.max_ttl.value_or(absl::Hours(1)));
      FUZZ_CHECK(server::StructToJson(out.parameters_schema()).ok(), "schema as JSON");
    }
  }
}

}  // namespace
}  // namespace approvald::fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  using namespace approvald;
  auto* s = new fuzz::State;
  s->deploy =
      fuzz::MustParse(handlers::LoadActionConfig(APPROVALD_DEPLOY_CONFIG), APPROVALD_DEPLOY_CONFIG);
  s->extra = fuzz::MustParse(handlers::ParseActionConfig(fuzz::kExtraTypes, "fuzz_requests.cc"),
                             "the extra types");
  fuzz::g_state = s;
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace approvald;
  namespace v1 = approvals::v1;
  if (size < 1) return 0;
  const char* bytes = reinterpret_cast<const char*>(data + 1);
  const int n = static_cast<int>(size - 1);
  const auto& limits = fuzz::g_state->limits;
  switch (data[0] % 8) {
    case 0: {
      v1::CreateApprovalRequest req;
      if (req.ParseFromArray(bytes, n)) fuzz::CheckCreate(req);
      break;
    }
    case 1: {
      v1::GetApprovalRequest req;
      if (!req.ParseFromArray(bytes, n)) break;
      absl::Status st = server::ValidateGet(req);
      if (st.ok()) {
        FUZZ_CHECK(server::IsUuid(req.id()), "id");
      } else {
        fuzz::CheckRejection(st);
      }
      break;
    }
    case 2: {
      v1::ListApprovalsRequest req;
      if (req.ParseFromArray(bytes, n)) fuzz::CheckList(req);
      break;
    }
    case 3: {
      v1::ApproveRequest req;
      if (!req.ParseFromArray(bytes, n)) break;
      absl::Status st = server::ValidateApprove(req, limits);
      fuzz::CheckDecision(req, st);
      if (st.ok()) FUZZ_CHECK(req.comment().size() <= limits.max_reason_bytes, "comment");
      break;
    }
    case 4: {
      v1::RejectRequest req;
      if (!req.ParseFromArray(bytes, n)) break;
      absl::Status st = server::ValidateReject(req, limits);
      fuzz::CheckDecision(req, st);
      if (st.ok()) {
        FUZZ_CHECK(!absl::StripAsciiWhitespace(req.reason()).empty(), "blank reason passed");
        FUZZ_CHECK(req.reason().find('\0') == std::string::npos, "NUL in reason passed");
      }
      break;
    }
    case 5: {
      v1::CancelApprovalRequest req;
      if (!req.ParseFromArray(bytes, n)) break;
      fuzz::CheckDecision(req, server::ValidateCancel(req, limits));
      break;
    }
    case 6: {
      v1::WatchApprovalsRequest req;
      if (req.ParseFromArray(bytes, n)) fuzz::CheckWatch(req);
      break;
    }
    case 7: {
      v1::ListActionTypesRequest req;
      if (req.ParseFromArray(bytes, n)) fuzz::CheckListActionTypes();
      break;
    }
  }
  return 0;
}
