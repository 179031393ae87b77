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

absl::Status HandlerRegistry::Register(const std::string& action_type,
                                       std::shared_ptr<ActionHandler> handler) {
  if (!IsValidActionType(action_type)) {
    return absl::InvalidArgumentError(absl::StrCat("invalid action type name: ", action_type));
  }
  if (!handlers_.emplace(action_type, std::move(handler)).second) {
    return absl::AlreadyExistsError(absl::StrCat("action type registered twice: ", action_type));
  }
  return absl::OkStatus();
}

ActionHandler* HandlerRegistry::Find(const std::string& action_type) const {
  auto it = handlers_.find(action_type);
  return it == handlers_.end() ? nullptr : it->second.get();
}

std::vector<std::string> HandlerRegistry::Names() const {
  std::vector<std::string> names;
  for (const auto& [name, handler] : handlers_) names.push_back(name);
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace approvald::handlers
