#pragma once

#include <set>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "handlers/backoff.h"
#include "handlers/config_reader.h"
#include "handlers/webhook_target.h"

namespace approvald::handlers {

/// One entry of the config's `webhooks:` list: events of the log posted to a URL, in order.
struct WebhookSubscription {
  std::string name;  ///< ^[a-z][a-z0-9_.-]{0,63}$, the key of its cursor in the database
  WebhookTarget target;
  std::set<std::string> event_types;   ///< created, approved, ...; empty: every type
  std::set<std::string> action_types;  ///< empty: every action type
  std::string format = "json";         ///< json (the event, as WatchApprovals sends it) or slack
  absl::Duration max_age = absl::Hours(24);  ///< of an event's failing deliveries: dead letter
  Backoff backoff;
  absl::Duration lease = absl::Seconds(30);  ///< one replica delivers it under this lease
};

/// The event types a subscription may name (the event log's).
const std::set<std::string>& WebhookEventTypes();

/// Reads the `webhooks:` list; `action_types`: the names the config declares (a filter naming
/// another is a typo).
absl::Status ParseWebhookSubscriptions(const ConfigReader& r, const YAML::Node& list,
                                       const std::set<std::string>& action_types,
                                       std::vector<WebhookSubscription>* out);

}  // namespace approvald::handlers
