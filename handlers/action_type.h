#pragma once

#include <google/protobuf/struct.pb.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "handlers/action_handler.h"

namespace re2 {
class RE2;
}

namespace approvald::handlers {

enum class ParamType { kString, kInteger, kNumber, kBoolean, kObject, kArray };

/// "string", "integer", ... or nullopt.
[[nodiscard]] std::optional<ParamType> ParseParamType(absl::string_view name);
absl::string_view ParamTypeName(ParamType type);

/// One declared field of an action's action_data.
struct ParameterSpec {
  std::string name;
  ParamType type = ParamType::kString;
  bool required = false;
  std::vector<google::protobuf::Value> enum_values;  ///< empty: any value
  std::optional<double> minimum;                     ///< integer / number
  std::optional<double> maximum;
  std::optional<size_t> max_length;  ///< string: characters (UTF-8 code points)
  std::string pattern;               ///< string: RE2 syntax, must match the whole value
  std::shared_ptr<const re2::RE2> pattern_re;
};

/// Who may create and decide an action type, and how decisions are reached.
struct ActionPolicy {
  std::vector<std::string> approver_roles;    ///< empty: any authenticated reviewer
  std::vector<std::string> requester_roles;   ///< empty: any authenticated caller
  std::optional<absl::Duration> default_ttl;  ///< else the server's --default-ttl
  std::optional<absl::Duration> max_ttl;      ///< else the server's --max-ttl
  bool allow_self_approval = false;
  int required_approvals = 1;
};

/// An action type: its parameters, policy and the handler that executes it.
struct ActionType {
  std::string name;
  std::string description;
  std::string handler_kind;  ///< "noop", "sql", or a C++ handler's name
  std::vector<ParameterSpec> parameters;
  bool additional_parameters = true;  ///< keep fields no parameter declares
  ActionPolicy policy;
  std::shared_ptr<ActionHandler> handler;
};

/// Checks action_data against the declared parameters. INVALID_ARGUMENT / INVALID_ACTION_DATA
/// with one google.rpc.BadRequest violation per bad field ("action_data.<name>").
absl::Status ValidateParameters(const ActionType& type, const google::protobuf::Struct& data);

/// The parameters as a JSON Schema object ({"type": "object", "properties": ..., "required": ...}).
google::protobuf::Struct ParametersSchema(const ActionType& type);

/// True if `roles` holds one of `allowed` (or `allowed` is empty).
[[nodiscard]] bool HasAnyRole(const std::vector<std::string>& roles,
                              const std::vector<std::string>& allowed);

}  // namespace approvald::handlers
