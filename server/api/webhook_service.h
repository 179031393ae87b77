#pragma once

#include <functional>

#include "approvals/v1/webhooks.grpc.pb.h"
#include "db/webhook_store.h"
#include "server/api/approval_service.h"

namespace approvald::server {

/// The gRPC edge of WebhookService: the event subscriptions' state (the config of this replica
/// beside the database's progress) and redelivery of a dead-lettered one. Callers need the
/// admin role; authentication, dispatch, logs and metrics are ApprovalServiceImpl's.
class WebhookServiceImpl final : public approvals::v1::WebhookService::CallbackService {
 public:
  /// `on_redeliver`: tells this replica's delivery to look again at once.
  WebhookServiceImpl(ApprovalServiceImpl& approvals, db::WebhookStore& store,
                     std::function<void()> on_redeliver);

  grpc::ServerUnaryReactor* ListWebhookSubscriptions(
      grpc::CallbackServerContext* ctx, const approvals::v1::ListWebhookSubscriptionsRequest* req,
      approvals::v1::ListWebhookSubscriptionsResponse* resp) override;
  grpc::ServerUnaryReactor* RedeliverWebhookSubscription(
      grpc::CallbackServerContext* ctx,
      const approvals::v1::RedeliverWebhookSubscriptionRequest* req,
      approvals::v1::WebhookSubscription* resp) override;

 private:
  /// The subscription's proto: `row` from the database, its config from the registry.
  void Fill(const db::WebhookSubscriptionRow& row, approvals::v1::WebhookSubscription* out) const;

  ApprovalServiceImpl& approvals_;
  db::WebhookStore& store_;
  std::function<void()> on_redeliver_;
};

}  // namespace approvald::server
