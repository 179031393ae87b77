#include "handlers/action_config.h"

#include <re2/re2.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "db/utf8.h"
#include "handlers/config_reader.h"
#include "handlers/handler_kinds.h"
#include "handlers/webhook_subscriptions.h"

namespace approvald::handlers {
namespace {

namespace pb = google::protobuf;

bool IsParameterName(const std::string& s) { return RE2::FullMatch(s, "[a-z_][a-z0-9_]{0,62}"); }

absl::Status ParseEnumValue(const ConfigReader& r, const YAML::Node& node, const std::string& path,
                            ParamType type, pb::Value* out) {
  switch (type) {
    case ParamType::kString: {
      std::string s;
      CONFIG_TRY(r.String(node, path, &s));
      out->set_string_value(s);
      return absl::OkStatus();
    }
    case ParamType::kInteger:
    case ParamType::kNumber: {
      double d = 0;
      CONFIG_TRY(r.Number(node, path, &d));
      out->set_number_value(d);
      return absl::OkStatus();
    }
    case ParamType::kBoolean: {
      bool b = false;
      CONFIG_TRY(r.Bool(node, path, &b));
      out->set_bool_value(b);
      return absl::OkStatus();
    }
    default:
      return r.Error(node, path, "enum is only for string, integer, number and boolean parameters");
  }
}

absl::Status ParseParameter(const ConfigReader& r, const YAML::Node& node, const std::string& path,
                            ParameterSpec* p) {
  CONFIG_TRY(r.CheckKeys(node, path,
                         {"name", "type", "required", "enum", "minimum", "maximum", "max_length",
                          "pattern", "description"}));
  if (!node["name"]) return r.Error(node, path + ".name", "is required");
  CONFIG_TRY(r.String(node["name"], path + ".name", &p->name));
  if (!IsParameterName(p->name)) {
    return r.Error(node["name"], path + ".name",
                   "must match [a-z_][a-z0-9_]* (it names a :placeholder)");
  }
  for (const char* builtin : {"approval_id", "requested_by", "decided_by", "action_data"}) {
    if (p->name == builtin)
      return r.Error(node["name"], path + ".name", "is a built-in placeholder");
  }
  if (!node["type"]) return r.Error(node, path + ".type", "is required");
  std::string type;
  CONFIG_TRY(r.String(node["type"], path + ".type", &type));
  auto parsed = ParseParamType(type);
  if (!parsed) {
    return r.Error(node["type"], path + ".type",
                   "must be one of string, integer, number, boolean, object, array");
  }
  p->type = *parsed;
  if (node["required"]) CONFIG_TRY(r.Bool(node["required"], path + ".required", &p->required));
  const bool numeric = p->type == ParamType::kInteger || p->type == ParamType::kNumber;
  for (const char* key : {"minimum", "maximum"}) {
    if (!node[key]) continue;
    if (!numeric) return r.Error(node[key], path + "." + key, "applies only to integer and number");
    double d = 0;
    CONFIG_TRY(r.Number(node[key], path + "." + key, &d));
    (std::string(key) == "minimum" ? p->minimum : p->maximum) = d;
  }
  if (p->minimum && p->maximum && *p->minimum > *p->maximum) {
    return r.Error(node["minimum"], path + ".minimum", "is greater than maximum");
  }
  const bool is_string = p->type == ParamType::kString;
  if (node["max_length"]) {
    if (!is_string)
      return r.Error(node["max_length"], path + ".max_length", "applies only to string");
    int64_t n = 0;
    CONFIG_TRY(r.Int(node["max_length"], path + ".max_length", &n));
    if (n < 1) return r.Error(node["max_length"], path + ".max_length", "must be at least 1");
    p->max_length = static_cast<size_t>(n);
  }
  if (node["pattern"]) {
    if (!is_string) return r.Error(node["pattern"], path + ".pattern", "applies only to string");
    CONFIG_TRY(r.String(node["pattern"], path + ".pattern", &p->pattern));
    RE2::Options options;
    options.set_log_errors(false);
    auto re = std::make_shared<RE2>(p->pattern, options);
    if (!re->ok())
      return r.Error(node["pattern"], path + ".pattern",
                     "is not a valid RE2 pattern: " + re->error());
    p->pattern_re = std::move(re);
  }
  if (node["enum"]) {
    const YAML::Node& e = node["enum"];
    if (!e.IsSequence() || e.size() == 0)
      return r.Error(e, path + ".enum", "must be a non-empty list");
    for (size_t i = 0; i < e.size(); ++i) {
      pb::Value v;
      CONFIG_TRY(ParseEnumValue(r, e[i], absl::StrCat(path, ".enum[", i, "]"), p->type, &v));
      p->enum_values.push_back(std::move(v));
    }
  }
  return absl::OkStatus();
}

absl::Status ParsePolicy(const ConfigReader& r, const YAML::Node& node, const std::string& path,
                         ActionPolicy* policy) {
  if (node["approver_roles"]) {
    CONFIG_TRY(
        r.StringList(node["approver_roles"], path + ".approver_roles", &policy->approver_roles));
  }
  if (node["requester_roles"]) {
    CONFIG_TRY(
        r.StringList(node["requester_roles"], path + ".requester_roles", &policy->requester_roles));
  }
  absl::Duration d;
  if (node["default_ttl"]) {
    CONFIG_TRY(r.Duration(node["default_ttl"], path + ".default_ttl", &d));
    policy->default_ttl = d;
  }
  if (node["max_ttl"]) {
    CONFIG_TRY(r.Duration(node["max_ttl"], path + ".max_ttl", &d));
    policy->max_ttl = d;
  }
  if (policy->default_ttl && policy->max_ttl && *policy->default_ttl > *policy->max_ttl) {
    return r.Error(node["default_ttl"], path + ".default_ttl", "is longer than max_ttl");
  }
  if (node["allow_self_approval"]) {
    CONFIG_TRY(r.Bool(node["allow_self_approval"], path + ".allow_self_approval",
                      &policy->allow_self_approval));
  }
  if (node["required_approvals"]) {
    int64_t n = 0;
    CONFIG_TRY(r.Int(node["required_approvals"], path + ".required_approvals", &n));
    if (n < 1 || n > 100) {
      return r.Error(node["required_approvals"], path + ".required_approvals",
                     "must be from 1 to 100");
    }
    policy->required_approvals = static_cast<int>(n);
  }
  return absl::OkStatus();
}

absl::Status ParseActionType(const ConfigReader& r, const YAML::Node& node, const std::string& path,
                             const CppHandlers& cpp, ActionType* t) {
  std::set<std::string> keys = {"name",
                                "description",
                                "handler",
                                "parameters",
                                "additional_parameters",
                                "approver_roles",
                                "requester_roles",
                                "default_ttl",
                                "max_ttl",
                                "allow_self_approval",
                                "required_approvals"};
  for (const HandlerKind& kind : BuiltInKinds()) keys.insert(kind.keys.begin(), kind.keys.end());
  CONFIG_TRY(r.CheckKeys(node, path, keys));
  if (!node["name"]) return r.Error(node, path + ".name", "is required");
  CONFIG_TRY(r.String(node["name"], path + ".name", &t->name));
  if (!IsValidActionType(t->name)) {
    return r.Error(node["name"], path + ".name", "must match ^[a-z][a-z0-9_.]{0,63}$");
  }
  if (node["description"])
    CONFIG_TRY(r.String(node["description"], path + ".description", &t->description));
  t->handler_kind = "noop";
  if (node["handler"]) CONFIG_TRY(r.String(node["handler"], path + ".handler", &t->handler_kind));
  if (const YAML::Node& params = node["parameters"]) {
    if (!params.IsSequence()) return r.Error(params, path + ".parameters", "must be a list");
    std::set<std::string> seen;
    for (size_t i = 0; i < params.size(); ++i) {
      ParameterSpec p;
      const std::string pp = absl::StrCat(path, ".parameters[", i, "]");
      CONFIG_TRY(ParseParameter(r, params[i], pp, &p));
      if (!seen.insert(p.name).second) return r.Error(params[i], pp + ".name", "is declared twice");
      t->parameters.push_back(std::move(p));
    }
  }
  if (node["additional_parameters"]) {
    CONFIG_TRY(r.Bool(node["additional_parameters"], path + ".additional_parameters",
                      &t->additional_parameters));
  }
  CONFIG_TRY(ParsePolicy(r, node, path, &t->policy));

  // A kind's own keys are for the kinds that have them only (external and webhook share some).
  std::map<std::string, std::vector<std::string>> owners;
  for (const HandlerKind& kind : BuiltInKinds()) {
    for (const std::string& key : kind.keys) owners[key].push_back(kind.name);
  }
  for (const auto& [key, kinds] : owners) {
    if (node[key] && std::find(kinds.begin(), kinds.end(), t->handler_kind) == kinds.end()) {
      return r.Error(node[key], path + "." + key,
                     absl::StrCat("is only for handler: ", absl::StrJoin(kinds, ", ")));
    }
  }
  for (const HandlerKind& kind : BuiltInKinds()) {
    if (kind.name != t->handler_kind) continue;
    absl::StatusOr<std::shared_ptr<ActionHandler>> handler = kind.build(r, node, path, *t);
    if (!handler.ok()) return handler.status();
    t->handler = std::move(*handler);
    return absl::OkStatus();
  }
  if (auto it = cpp.find(t->handler_kind); it != cpp.end()) {
    t->handler = it->second;
  } else {
    std::vector<std::string> kinds;
    for (const HandlerKind& kind : BuiltInKinds()) kinds.push_back(kind.name);
    for (const auto& [name, h] : cpp) kinds.push_back(name);
    return r.Error(node["handler"], path + ".handler",
                   absl::StrCat("unknown handler (known: ", absl::StrJoin(kinds, ", "), ")"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<HandlerRegistry>> ParseRoot(const YAML::Node& root,
                                                           const ConfigReader& r,
                                                           const CppHandlers& cpp) {
  if (!root.IsMap()) return r.Error(root, "(top level)", "must be a mapping with action_types");
  CONFIG_TRY(r.CheckKeys(root, "", {"version", "action_types", "webhooks"}));
  const YAML::Node& types = root["action_types"];
  if (!types) return r.Error(root, "action_types", "is required");
  if (!types.IsSequence()) return r.Error(types, "action_types", "must be a list");
  auto registry = std::make_shared<HandlerRegistry>();
  for (size_t i = 0; i < types.size(); ++i) {
    const std::string path = absl::StrCat("action_types[", i, "]");
    ActionType t;
    CONFIG_TRY(ParseActionType(r, types[i], path, cpp, &t));
    const std::string name = t.name;
    if (absl::Status st = registry->Register(std::move(t)); !st.ok()) {
      return r.Error(types[i]["name"], path + ".name",
                     absl::StrCat("\"", name, "\" is declared twice"));
    }
  }
  if (const YAML::Node hooks = root["webhooks"]) {
    std::set<std::string> names;
    for (const ActionType* t : registry->All()) names.insert(t->name);
    std::vector<WebhookSubscription> subscriptions;
    CONFIG_TRY(ParseWebhookSubscriptions(r, hooks, names, &subscriptions));
    registry->SetWebhooks(std::move(subscriptions));
  }
  return registry;
}

}  // namespace

absl::StatusOr<std::shared_ptr<HandlerRegistry>> ParseActionConfig(
    const std::string& yaml, const std::string& source, const CppHandlers& cpp_handlers) {
  // "file:line:column" of a byte offset.
  auto place = [&](size_t at) {
    const absl::string_view before = absl::string_view(yaml).substr(0, at);
    const size_t line = static_cast<size_t>(std::count(before.begin(), before.end(), '\n')) + 1;
    const size_t line_start = before.rfind('\n');
    const size_t column = at - (line_start == absl::string_view::npos ? 0 : line_start + 1) + 1;
    return absl::StrCat(source, ":", line, ":", column);
  };
  // Every name, description and pattern ends up in proto3 strings (ListActionTypes), which must
  // be UTF-8 (found by tests/fuzz/fuzz_config).
  if (const size_t bad = db::FirstInvalidUtf8(yaml); bad != absl::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat(place(bad), ": the file is not valid UTF-8"));
  }
  // YAML allows no control characters but tab, line feed and carriage return; yaml-cpp let a NUL
  // through and then returned text that is not UTF-8 (found by tests/fuzz/fuzz_config).
  for (size_t i = 0; i < yaml.size(); ++i) {
    const auto c = static_cast<unsigned char>(yaml[i]);
    if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7F) {
      return absl::InvalidArgumentError(
          absl::StrCat(place(i), ": the file holds a control character (",
                       absl::StrFormat("0x%02X", c), "), which YAML does not allow"));
    }
  }
  ConfigReader reader(source);
  try {
    return ParseRoot(YAML::Load(yaml), reader, cpp_handlers);
  } catch (const YAML::Exception& e) {
    std::string where = source;
    if (e.mark.line >= 0) absl::StrAppend(&where, ":", e.mark.line + 1, ":", e.mark.column + 1);
    return absl::InvalidArgumentError(absl::StrCat(where, ": ", e.msg));
  }
}

absl::StatusOr<std::shared_ptr<HandlerRegistry>> LoadActionConfig(const std::string& path,
                                                                  const CppHandlers& cpp_handlers) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read config file ", path));
  std::stringstream buffer;
  buffer << in.rdbuf();
  return ParseActionConfig(buffer.str(), path, cpp_handlers);
}

}  // namespace approvald::handlers
