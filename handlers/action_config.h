#pragma once

#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "handlers/config_reader.h"
#include "handlers/handler_registry.h"

namespace approvald::handlers {

/// C++ handlers that a config may name as `handler:` besides the built-in kinds
/// (handler_kinds.h).
using CppHandlers = absl::flat_hash_map<std::string, std::shared_ptr<ActionHandler>>;

/// Parses the YAML configuration (`action_types:` list) into a registry. Every error is
/// INVALID_ARGUMENT with `source:line:column: key.path: what is wrong`.
absl::StatusOr<std::shared_ptr<HandlerRegistry>> ParseActionConfig(
    const std::string& yaml, const std::string& source, const CppHandlers& cpp_handlers = {});

/// Reads and parses a config file (NOT_FOUND if unreadable).
absl::StatusOr<std::shared_ptr<HandlerRegistry>> LoadActionConfig(
    const std::string& path, const CppHandlers& cpp_handlers = {});

}  // namespace approvald::handlers
