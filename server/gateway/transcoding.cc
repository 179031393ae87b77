#include "server/gateway/transcoding.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "db/errors.h"
#include "google/protobuf/util/json_util.h"
#include "google/rpc/status.pb.h"
#include "server/status_conversion.h"

namespace approvald::server {
namespace {

namespace pb = google::protobuf;
using Field = pb::FieldDescriptor;

const Field* FieldNamed(const pb::Descriptor& type, const std::string& name) {
  if (const Field* f = type.FindFieldByName(name)) return f;
  for (int i = 0; i < type.field_count(); ++i) {
    if (type.field(i)->json_name() == name) return type.field(i);
  }
  return nullptr;
}

// An enum value by its name, also without the enum's prefix and in any case (`pending` for
// APPROVAL_STATUS_PENDING), or by its number.
const pb::EnumValueDescriptor* EnumValue(const pb::EnumDescriptor& type, const std::string& text) {
  const std::string upper = absl::AsciiStrToUpper(text);
  if (const auto* v = type.FindValueByName(upper)) return v;
  const std::string first = type.value(0)->name();
  if (absl::EndsWith(first, "_UNSPECIFIED")) {
    const std::string prefix = first.substr(0, first.size() - std::string("UNSPECIFIED").size());
    if (const auto* v = type.FindValueByName(prefix + upper)) return v;
  }
  int number = 0;
  if (absl::SimpleAtoi(text, &number)) return type.FindValueByNumber(number);
  return nullptr;
}

// Sets (or, for a repeated field, adds) one query parameter's value.
absl::Status SetFromText(pb::Message& message, const Field& field, const std::string& key,
                         const std::string& text) {
  const pb::Reflection& r = *message.GetReflection();
  const bool rep = field.is_repeated();
  auto bad = [&](absl::string_view what) {
    return db::FieldError(key, absl::StrCat("query parameter must be ", what));
  };
  switch (field.cpp_type()) {
    case Field::CPPTYPE_STRING:
      rep ? r.AddString(&message, &field, text) : r.SetString(&message, &field, text);
      return absl::OkStatus();
    case Field::CPPTYPE_INT32: {
      int32_t v = 0;
      if (!absl::SimpleAtoi(text, &v)) return bad("a 32-bit integer");
      rep ? r.AddInt32(&message, &field, v) : r.SetInt32(&message, &field, v);
      return absl::OkStatus();
    }
    case Field::CPPTYPE_INT64: {
      int64_t v = 0;
      if (!absl::SimpleAtoi(text, &v)) return bad("an integer");
      rep ? r.AddInt64(&message, &field, v) : r.SetInt64(&message, &field, v);
      return absl::OkStatus();
    }
    case Field::CPPTYPE_BOOL: {
      bool v = false;
      if (!absl::SimpleAtob(text, &v)) return bad("true or false");
      rep ? r.AddBool(&message, &field, v) : r.SetBool(&message, &field, v);
      return absl::OkStatus();
    }
    case Field::CPPTYPE_ENUM: {
      const pb::EnumValueDescriptor* v = EnumValue(*field.enum_type(), text);
      if (v == nullptr) return bad(absl::StrCat("a value of ", field.enum_type()->name()));
      rep ? r.AddEnum(&message, &field, v) : r.SetEnum(&message, &field, v);
      return absl::OkStatus();
    }
    default:
      return db::FieldError(key, "cannot be given as a query parameter");
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<pb::Message>> BuildRequest(
    const RouteMatch& match, const std::string& body,
    const std::vector<std::pair<std::string, std::string>>& query,
    const std::vector<std::pair<std::string, std::string>>& aliases) {
  const pb::Descriptor& type = *match.route->method->input_type();
  std::unique_ptr<pb::Message> message(
      pb::MessageFactory::generated_factory()->GetPrototype(&type)->New());
  const bool has_body = !absl::StripAsciiWhitespace(body).empty();
  if (match.route->body == "*") {
    if (has_body) {
      pb::util::JsonParseOptions options;
      options.ignore_unknown_fields = false;
      if (auto st = pb::util::JsonStringToMessage(body, message.get(), options); !st.ok()) {
        return db::FieldError(
            "body", absl::StrCat("is not a JSON ", type.name(), ": ", st.message().as_string()));
      }
    }
  } else if (has_body) {
    return db::FieldError("body", absl::StrCat(match.route->verb, " ", match.route->pattern,
                                               " takes no body (its fields go in the query)"));
  }
  for (const auto& [key, value] : query) {
    std::string name = key;
    for (const auto& [alias, field] : aliases) {
      if (key == alias) name = field;
    }
    const Field* field = FieldNamed(type, name);
    if (field == nullptr) {
      return db::FieldError(key, absl::StrCat("is not a field of ", type.name()));
    }
    if (match.route->body == "*") {
      return db::FieldError(key, "goes in the JSON body of this method, not in the query");
    }
    if (absl::Status st = SetFromText(*message, *field, key, value); !st.ok()) return st;
  }
  const pb::Reflection& r = *message->GetReflection();
  for (const auto& [name, value] : match.bindings) {
    const Field* field = type.FindFieldByName(name);
    const std::string given = r.GetString(*message, field);
    if (!given.empty() && given != value) {
      return db::FieldError(name, "differs between the path and the body");
    }
    r.SetString(message.get(), field, value);
  }
  return message;
}

std::string BufferBytes(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  std::string out;
  if (!buffer.Dump(&slices).ok()) return out;
  for (const grpc::Slice& s : slices)
    out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  return out;
}

std::string ToJson(const pb::Message& message) {
  std::string out;
  pb::util::JsonPrintOptions options;
  (void)pb::util::MessageToJsonString(message, &out, options);
  return out;
}

int HttpStatusOf(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return 200;
    case grpc::StatusCode::CANCELLED:
      return 499;
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::FAILED_PRECONDITION:
    case grpc::StatusCode::OUT_OF_RANGE:
      return 400;
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return 504;
    case grpc::StatusCode::NOT_FOUND:
      return 404;
    case grpc::StatusCode::ALREADY_EXISTS:
    case grpc::StatusCode::ABORTED:
      return 409;
    case grpc::StatusCode::PERMISSION_DENIED:
      return 403;
    case grpc::StatusCode::UNAUTHENTICATED:
      return 401;
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return 429;
    case grpc::StatusCode::UNIMPLEMENTED:
      return 501;
    case grpc::StatusCode::UNAVAILABLE:
      return 503;
    default:  // UNKNOWN, INTERNAL, DATA_LOSS
      return 500;
  }
}

HttpAnswer ErrorAnswer(const grpc::Status& status) {
  google::rpc::Status body;
  if (status.error_details().empty() || !body.ParseFromString(status.error_details())) {
    body.Clear();
    body.set_code(static_cast<int>(status.error_code()));
    body.set_message(status.error_message());
  }
  HttpAnswer answer{HttpStatusOf(status.error_code()), "application/json", ToJson(body), {}};
  answer.body.push_back('\n');
  if (status.error_code() == grpc::StatusCode::UNAUTHENTICATED) {
    answer.headers.emplace_back("WWW-Authenticate", "Bearer");
  }
  return answer;
}

HttpAnswer ErrorAnswer(const absl::Status& status) { return ErrorAnswer(ToGrpcStatus(status)); }

}  // namespace approvald::server
