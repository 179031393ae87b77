#pragma once

#include <string>
#include <vector>

#include "absl/time/time.h"
#include "handlers/config_reader.h"

namespace approvald::handlers {

/// Where a webhook goes and how it is signed: shared by event subscriptions and the `webhook`
/// action kind. The keys are secret: nothing prints them (config errors name their source).
struct WebhookTarget {
  std::string url;                ///< http:// or https://
  std::vector<std::string> keys;  ///< HMAC keys, one signature each (several during a rotation)
  absl::Duration timeout = absl::Seconds(10);  ///< one attempt, connect to last byte
  std::string ca_file;  ///< PEM bundle to verify the server with; empty: the system's
};

/// The config keys of a target.
inline const std::vector<std::string>& WebhookTargetKeys() {
  static const auto* const keys = new std::vector<std::string>{
      "url", "url_env", "secret_env", "secret_file", "timeout", "ca_file"};
  return *keys;
}

/// Reads a target from `entry` (url or url_env, one of secret_env / secret_file, timeout,
/// ca_file). A secret is one or more whitespace-separated values, each `whsec_` + base64 (the
/// Standard Webhooks form, decoded) or else used as it is; each must be at least 16 bytes.
absl::Status ParseWebhookTarget(const ConfigReader& r, const YAML::Node& entry,
                                const std::string& path, WebhookTarget* out);

}  // namespace approvald::handlers
