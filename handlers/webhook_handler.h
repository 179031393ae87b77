#pragma once

#include "handlers/external_handler.h"
#include "handlers/webhook_target.h"

namespace approvald::handlers {

/// `handler: webhook`: approving enqueues one execution (as for `external`), which approvald
/// itself runs as a signed HTTPS POST of the approval to the target (server/webhooks/), with the
/// execution id as Idempotency-Key, retried with the type's backoff up to max_attempts.
class WebhookHandler final : public ActionHandler {
 public:
  WebhookHandler(ExecutorPolicy policy, WebhookTarget target)
      : policy_(std::move(policy)), target_(std::move(target)) {}
  absl::Status Validate(const google::protobuf::Struct& action_data) const override;
  absl::StatusOr<google::protobuf::Struct> Execute(db::Tx& tx,
                                                   const db::ApprovalRecord& approval) override;
  const ExecutorPolicy* executor() const override { return &policy_; }
  const WebhookTarget* webhook() const override { return &target_; }

 private:
  const ExecutorPolicy policy_;
  const WebhookTarget target_;
};

}  // namespace approvald::handlers
