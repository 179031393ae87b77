#include "handlers/webhook_subscriptions.h"

#include <re2/re2.h>

#include "absl/strings/str_join.h"

namespace approvald::handlers {
namespace {

absl::Status ParseSet(const ConfigReader& r, const YAML::Node& node, const std::string& path,
                      const std::set<std::string>& allowed, const std::string& what,
                      std::set<std::string>* out) {
  std::vector<std::string> values;
  CONFIG_TRY(r.StringList(node, path, &values));
  for (size_t i = 0; i < values.size(); ++i) {
    if (!allowed.count(values[i])) {
      return r.Error(node[i], absl::StrCat(path, "[", i, "]"),
                     absl::StrCat("\"", values[i], "\" is not ", what, " (",
                                  absl::StrJoin(allowed, ", "), ")"));
    }
    out->insert(values[i]);
  }
  return absl::OkStatus();
}

absl::Status ParseOne(const ConfigReader& r, const YAML::Node& e, const std::string& path,
                      const std::set<std::string>& action_types, WebhookSubscription* s) {
  std::vector<std::string> keys = WebhookTargetKeys();
  keys.insert(keys.end(),
              {"name", "events", "action_types", "format", "max_age", "backoff", "lease"});
  CONFIG_TRY(r.CheckKeys(e, path, std::set<std::string>(keys.begin(), keys.end())));
  if (!e["name"]) return r.Error(e, path + ".name", "is required");
  CONFIG_TRY(r.String(e["name"], path + ".name", &s->name));
  static const LazyRE2 kName = {"[a-z][a-z0-9_.-]{0,63}"};
  if (!RE2::FullMatch(s->name, *kName)) {
    return r.Error(e["name"], path + ".name",
                   "must be lowercase letters, digits, '_', '.' or '-', starting with a letter "
                   "(at most 64)");
  }
  CONFIG_TRY(ParseWebhookTarget(r, e, path, &s->target));
  if (e["events"]) {
    CONFIG_TRY(ParseSet(r, e["events"], path + ".events", WebhookEventTypes(), "an event type",
                        &s->event_types));
  }
  if (e["action_types"]) {
    CONFIG_TRY(ParseSet(r, e["action_types"], path + ".action_types", action_types,
                        "an action type of this config", &s->action_types));
  }
  if (e["format"]) {
    CONFIG_TRY(r.String(e["format"], path + ".format", &s->format));
    if (s->format != "json" && s->format != "slack") {
      return r.Error(e["format"], path + ".format", "must be json or slack");
    }
  }
  if (e["max_age"]) CONFIG_TRY(r.Duration(e["max_age"], path + ".max_age", &s->max_age));
  if (e["backoff"]) CONFIG_TRY(ParseBackoff(r, e["backoff"], path + ".backoff", &s->backoff));
  if (e["lease"]) CONFIG_TRY(r.Duration(e["lease"], path + ".lease", &s->lease));
  if (s->lease < absl::Seconds(2) || s->lease > absl::Minutes(10)) {
    return r.Error(e["lease"], path + ".lease", "must be between 2s and 10m");
  }
  // An attempt must end well within the lease, or another replica could send in parallel.
  if (s->target.timeout * 2 > s->lease) {
    return r.Error(e, path + ".timeout", "must be at most half the lease");
  }
  return absl::OkStatus();
}

}  // namespace

const std::set<std::string>& WebhookEventTypes() {
  static const auto* const types = new std::set<std::string>{
      "created",   "voted",  "approved",          "rejected",        "expired",
      "cancelled", "failed", "execution_started", "execution_retry", "executed"};
  return *types;
}

absl::Status ParseWebhookSubscriptions(const ConfigReader& r, const YAML::Node& list,
                                       const std::set<std::string>& action_types,
                                       std::vector<WebhookSubscription>* out) {
  if (!list.IsSequence()) return r.Error(list, "webhooks", "must be a list");
  std::set<std::string> names;
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string path = absl::StrCat("webhooks[", i, "]");
    WebhookSubscription s;
    CONFIG_TRY(ParseOne(r, list[i], path, action_types, &s));
    if (!names.insert(s.name).second) {
      return r.Error(list[i]["name"], path + ".name",
                     absl::StrCat("\"", s.name, "\" is declared twice"));
    }
    out->push_back(std::move(s));
  }
  return absl::OkStatus();
}

}  // namespace approvald::handlers
