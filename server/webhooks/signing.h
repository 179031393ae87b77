#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace approvald::server {

/// The Standard Webhooks `webhook-signature` header: for each key, `v1,` + base64 of
/// HMAC-SHA256(key, "{id}.{timestamp}.{body}"), space-separated (several during a rotation).
std::string WebhookSignature(const std::vector<std::string>& keys, absl::string_view id,
                             int64_t timestamp, absl::string_view body);

}  // namespace approvald::server
