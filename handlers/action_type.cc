#include "handlers/action_type.h"

#include <re2/re2.h>

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "db/errors.h"

namespace approvald::handlers {
namespace {

namespace pb = google::protobuf;
using Violations = std::vector<std::pair<std::string, std::string>>;

constexpr struct {
  ParamType type;
  absl::string_view name;
} kTypeNames[] = {{ParamType::kString, "string"}, {ParamType::kInteger, "integer"},
                  {ParamType::kNumber, "number"}, {ParamType::kBoolean, "boolean"},
                  {ParamType::kObject, "object"}, {ParamType::kArray, "array"}};

size_t CodePoints(const std::string& s) {
  return static_cast<size_t>(std::count_if(
      s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

bool SameValue(const pb::Value& a, const pb::Value& b) {
  return a.SerializeAsString() == b.SerializeAsString();
}

std::string Describe(const pb::Value& v) {
  switch (v.kind_case()) {
    case pb::Value::kStringValue:
      return absl::StrCat("\"", v.string_value(), "\"");
    case pb::Value::kNumberValue:
      return absl::StrCat(v.number_value());
    case pb::Value::kBoolValue:
      return v.bool_value() ? "true" : "false";
    default:
      return "null";
  }
}

// Empty string if `value` satisfies `spec`, else why not.
std::string Check(const ParameterSpec& spec, const pb::Value& value) {
  const auto kind = value.kind_case();
  switch (spec.type) {
    case ParamType::kString:
      if (kind != pb::Value::kStringValue) return "must be a string";
      break;
    case ParamType::kInteger:
      if (kind != pb::Value::kNumberValue ||
          std::trunc(value.number_value()) != value.number_value() ||
          std::fabs(value.number_value()) > 9007199254740991.0) {
        return "must be an integer";
      }
      break;
    case ParamType::kNumber:
      if (kind != pb::Value::kNumberValue) return "must be a number";
      break;
    case ParamType::kBoolean:
      if (kind != pb::Value::kBoolValue) return "must be a boolean";
      break;
    case ParamType::kObject:
      if (kind != pb::Value::kStructValue) return "must be an object";
      break;
    case ParamType::kArray:
      if (kind != pb::Value::kListValue) return "must be an array";
      break;
  }
  if (kind == pb::Value::kNumberValue) {
    if (spec.minimum && value.number_value() < *spec.minimum) {
      return absl::StrCat("must be at least ", *spec.minimum);
    }
    if (spec.maximum && value.number_value() > *spec.maximum) {
      return absl::StrCat("must be at most ", *spec.maximum);
    }
  }
  if (kind == pb::Value::kStringValue) {
    if (spec.max_length && CodePoints(value.string_value()) > *spec.max_length) {
      return absl::StrCat("must be at most ", *spec.max_length, " characters");
    }
    if (spec.pattern_re && !RE2::FullMatch(value.string_value(), *spec.pattern_re)) {
      return absl::StrCat("must match the pattern ", spec.pattern);
    }
  }
  if (!spec.enum_values.empty() &&
      std::none_of(spec.enum_values.begin(), spec.enum_values.end(),
                   [&](const pb::Value& e) { return SameValue(e, value); })) {
    std::vector<std::string> allowed;
    for (const auto& e : spec.enum_values) allowed.push_back(Describe(e));
    return absl::StrCat("must be one of ", absl::StrJoin(allowed, ", "));
  }
  return "";
}

}  // namespace

std::optional<ParamType> ParseParamType(absl::string_view name) {
  for (const auto& t : kTypeNames) {
    if (t.name == name) return t.type;
  }
  return std::nullopt;
}

absl::string_view ParamTypeName(ParamType type) {
  for (const auto& t : kTypeNames) {
    if (t.type == type) return t.name;
  }
  return "string";
}

bool HasAnyRole(const std::vector<std::string>& roles, const std::vector<std::string>& allowed) {
  if (allowed.empty()) return true;
  return std::any_of(roles.begin(), roles.end(), [&](const std::string& r) {
    return std::find(allowed.begin(), allowed.end(), r) != allowed.end();
  });
}

absl::Status ValidateParameters(const ActionType& type, const pb::Struct& data) {
  Violations v;
  for (const ParameterSpec& spec : type.parameters) {
    auto it = data.fields().find(spec.name);
    const std::string field = absl::StrCat("action_data.", spec.name);
    if (it == data.fields().end() || it->second.kind_case() == pb::Value::kNullValue) {
      if (spec.required) v.emplace_back(field, "is required");
      continue;
    }
    if (std::string why = Check(spec, it->second); !why.empty()) v.emplace_back(field, why);
  }
  if (!type.additional_parameters) {
    std::vector<std::string> extra;
    for (const auto& [name, value] : data.fields()) {
      const bool declared =
          std::any_of(type.parameters.begin(), type.parameters.end(),
                      [&key = name](const ParameterSpec& p) { return p.name == key; });
      if (!declared) extra.push_back(name);
    }
    std::sort(extra.begin(), extra.end());
    for (const auto& name : extra) {
      v.emplace_back(absl::StrCat("action_data.", name),
                     absl::StrCat("is not a parameter of ", type.name));
    }
  }
  if (v.empty()) return absl::OkStatus();
  std::string message = absl::StrCat("action_data does not fit ", type.name, ": ");
  for (size_t i = 0; i < v.size(); ++i)
    absl::StrAppend(&message, i ? "; " : "", v[i].first, " ", v[i].second);
  return db::FieldErrors(v, approvals::v1::INVALID_ACTION_DATA, message);
}

pb::Struct ParametersSchema(const ActionType& type) {
  pb::Struct schema;
  auto& f = *schema.mutable_fields();
  f["type"].set_string_value("object");
  auto& props = *f["properties"].mutable_struct_value()->mutable_fields();
  pb::ListValue required;
  for (const ParameterSpec& p : type.parameters) {
    auto& prop = *props[p.name].mutable_struct_value()->mutable_fields();
    prop["type"].set_string_value(std::string(ParamTypeName(p.type)));
    if (p.minimum) prop["minimum"].set_number_value(*p.minimum);
    if (p.maximum) prop["maximum"].set_number_value(*p.maximum);
    if (p.max_length) prop["maxLength"].set_number_value(static_cast<double>(*p.max_length));
    if (!p.pattern.empty()) prop["pattern"].set_string_value(p.pattern);
    if (!p.enum_values.empty()) {
      auto* values = prop["enum"].mutable_list_value();
      for (const auto& e : p.enum_values) *values->add_values() = e;
    }
    if (p.required) required.add_values()->set_string_value(p.name);
  }
  *f["required"].mutable_list_value() = required;
  f["additionalProperties"].set_bool_value(type.additional_parameters);
  return schema;
}

}  // namespace approvald::handlers
