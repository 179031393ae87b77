#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "handlers/action_handler.h"
#include "handlers/action_type.h"
#include "handlers/webhook_subscriptions.h"

namespace approvald::handlers {

/// The action types a server offers: name -> parameters, policy and handler. Filled at start-up
/// (or from a reloaded config), then read-only: safe to read from any thread.
class HandlerRegistry {
 public:
  /// ALREADY_EXISTS if the type is registered; INVALID_ARGUMENT if the name is not a valid
  /// action type (^[a-z][a-z0-9_.]{0,63}$) or it has no handler.
  absl::Status Register(ActionType type);
  /// A type with the default policy and no declared parameters.
  absl::Status Register(const std::string& action_type, std::shared_ptr<ActionHandler> handler);
  /// nullptr if unknown.
  const ActionType* Find(const std::string& action_type) const;
  /// Every type, by name.
  std::vector<const ActionType*> All() const;

  /// The config's event webhook subscriptions.
  void SetWebhooks(std::vector<WebhookSubscription> webhooks) { webhooks_ = std::move(webhooks); }
  const std::vector<WebhookSubscription>& webhooks() const { return webhooks_; }

 private:
  absl::flat_hash_map<std::string, ActionType> types_;
  std::vector<WebhookSubscription> webhooks_;
};

/// True if `name` is a valid action type name.
[[nodiscard]] bool IsValidActionType(absl::string_view name);

}  // namespace approvald::handlers
