#pragma once

#include <grpcpp/channel.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"

namespace approvald::client {

/// `approvalctl webhooks list` and `approvalctl webhooks redeliver NAME` (WebhookService, admin
/// role). `args`: what follows `webhooks`. Returns the exit code (2: usage).
int RunWebhooks(std::shared_ptr<grpc::Channel> channel, const std::string& token,
                absl::Duration timeout, const std::vector<std::string>& args, bool json);

}  // namespace approvald::client
