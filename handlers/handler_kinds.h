#pragma once

#include <yaml-cpp/yaml.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "handlers/action_handler.h"
#include "handlers/action_type.h"
#include "handlers/config_reader.h"

namespace approvald::handlers {

/// A kind of handler, named by an action type's `handler:` in the config: the config keys it
/// adds to an action type's entry (only for that kind), and how it builds the type's handler
/// from the entry, once the type's name, parameters and policy are parsed. Errors are `r`'s
/// (INVALID_ARGUMENT with the place in the file).
struct HandlerKind {
  std::string name;
  std::vector<std::string> keys;
  absl::StatusOr<std::shared_ptr<ActionHandler>> (*build)(const ConfigReader& r,
                                                          const YAML::Node& entry,
                                                          const std::string& path,
                                                          const ActionType& type);
};

/// The kinds approvald knows, one line each in handler_kinds.cc: a new kind is one new file
/// (its handler and its HandlerKind) and one line there.
std::vector<HandlerKind> BuiltInKinds();

// The kinds, each defined beside its handler.
HandlerKind NoopKind();      // noop_handler.cc
HandlerKind SqlKind();       // sql_kind.cc
HandlerKind ExternalKind();  // external_handler.cc
HandlerKind WebhookKind();   // webhook_handler.cc

}  // namespace approvald::handlers
