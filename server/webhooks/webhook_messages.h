#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "db/approval.h"
#include "db/execution_store.h"
#include "handlers/webhook_subscriptions.h"

namespace approvald::server {

/// The `webhook-id` of an event for a subscription: the same on every attempt and replica, so
/// receivers dedupe on it.
std::string EventWebhookId(const std::string& subscription, int64_t event_id);

/// Whether the subscription wants the event (its event and action type filters).
[[nodiscard]] bool WantsEvent(const handlers::WebhookSubscription& s, const db::EventRecord& e);

/// The body posted for an event: `json`, the ApprovalEvent in protobuf's JSON mapping (what
/// WatchApprovals and GET /v1/events carry); `slack`, {"text": ...} for an incoming webhook.
absl::StatusOr<std::string> EventBody(const db::EventRecord& e, const std::string& format);

/// The body a `webhook` action posts: {"executionId", "attempt", "approval": Approval JSON}.
absl::StatusOr<std::string> ActionBody(const db::ExecutionRecord& x);

}  // namespace approvald::server
