#include "handlers/handler_registry.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace approvald::handlers {

bool IsValidActionType(absl::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  if (name[0] < 'a' || name[0] > 'z') return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.';
  });
}

absl::Status HandlerRegistry::Register(ActionType type) {
  if (!IsValidActionType(type.name)) {
    return absl::InvalidArgumentError(absl::StrCat("invalid action type name: ", type.name));
  }
  if (!type.handler) {
    return absl::InvalidArgumentError(absl::StrCat("action type ", type.name, " has no handler"));
  }
  const std::string name = type.name;
  if (!types_.emplace(name, std::move(type)).second) {
    return absl::AlreadyExistsError(absl::StrCat("action type registered twice: ", name));
  }
  return absl::OkStatus();
}

absl::Status HandlerRegistry::Register(const std::string& action_type,
                                       std::shared_ptr<ActionHandler> handler) {
  ActionType type;
  type.name = action_type;
  type.handler_kind = action_type;
  type.handler = std::move(handler);
  return Register(std::move(type));
}

const ActionType* HandlerRegistry::Find(const std::string& action_type) const {
  auto it = types_.find(action_type);
  return it == types_.end() ? nullptr : &it->second;
}

std::vector<const ActionType*> HandlerRegistry::All() const {
  std::vector<const ActionType*> all;
  for (const auto& [name, type] : types_) all.push_back(&type);
  std::sort(all.begin(), all.end(),
            [](const ActionType* a, const ActionType* b) { return a->name < b->name; });
  return all;
}

}  // namespace approvald::handlers
