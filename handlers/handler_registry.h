#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "handlers/action_handler.h"

namespace approvald::handlers {

/// Action type name -> handler. Filled at start-up, then read-only (safe to read from any thread).
class HandlerRegistry {
 public:
  /// ALREADY_EXISTS if the type is registered; INVALID_ARGUMENT if the name is not a valid
  /// action type (^[a-z][a-z0-9_.]{0,63}$).
  absl::Status Register(const std::string& action_type, std::shared_ptr<ActionHandler> handler);
  /// nullptr if unknown.
  ActionHandler* Find(const std::string& action_type) const;
  std::vector<std::string> Names() const;

 private:
  absl::flat_hash_map<std::string, std::shared_ptr<ActionHandler>> handlers_;
};

/// True if `name` is a valid action type name.
bool IsValidActionType(absl::string_view name);

}  // namespace approvald::handlers
