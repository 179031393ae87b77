#include "server/api/webhook_service.h"

#include <re2/re2.h>

#include "absl/strings/str_cat.h"
#include "db/errors.h"
#include "db/status_macros.h"
#include "handlers/action_type.h"
#include "server/api/proto_convert.h"
#include "server/webhooks/http_post.h"

namespace approvald::server {
namespace v1 = approvals::v1;
namespace {

constexpr char kAdminRole[] = "admin";

absl::Status NeedsAdmin(const absl::StatusOr<Principal>& p) {
  if (!p.ok() || handlers::HasAnyRole(p->roles, {kAdminRole})) return absl::OkStatus();
  return db::ReasonError(absl::StatusCode::kPermissionDenied, v1::ROLE_REQUIRED,
                         "webhook subscriptions need the admin role",
                         {{"required_roles", kAdminRole}});
}

void SetTime(const std::optional<absl::Time>& t, google::protobuf::Timestamp* out) {
  if (t) *out = ToTimestamp(*t);
}

}  // namespace

WebhookServiceImpl::WebhookServiceImpl(ApprovalServiceImpl& approvals, db::WebhookStore& store,
                                       std::function<void()> on_redeliver)
    : approvals_(approvals), store_(store), on_redeliver_(std::move(on_redeliver)) {}

void WebhookServiceImpl::Fill(const db::WebhookSubscriptionRow& row,
                              v1::WebhookSubscription* out) const {
  out->set_name(row.name);
  out->set_state(row.state == "dead_letter" ? v1::WEBHOOK_SUBSCRIPTION_STATE_DEAD_LETTER
                                            : v1::WEBHOOK_SUBSCRIPTION_STATE_ACTIVE);
  for (const handlers::WebhookSubscription& s : approvals_.registry()->webhooks()) {
    if (s.name != row.name) continue;
    out->set_configured(true);
    out->set_url_origin(UrlOrigin(s.target.url));
    out->set_format(s.format);
    for (const std::string& t : s.event_types) out->add_event_types(t);
    for (const std::string& t : s.action_types) out->add_action_types(t);
  }
  out->set_cursor(row.cursor);
  out->set_delivered(row.delivered);
  out->set_failing_event_id(row.failing_event_id.value_or(0));
  out->set_attempts(row.attempts);
  out->set_last_error(row.last_error.value_or(""));
  SetTime(row.first_failure_time, out->mutable_first_failure_time());
  SetTime(row.next_attempt_time, out->mutable_next_attempt_time());
  SetTime(row.dead_letter_time, out->mutable_dead_letter_time());
  if (row.lease_expire_time && row.lease_holder && *row.lease_expire_time > absl::Now()) {
    out->set_lease_holder(*row.lease_holder);
    SetTime(row.lease_expire_time, out->mutable_lease_expire_time());
  }
}

grpc::ServerUnaryReactor* WebhookServiceImpl::ListWebhookSubscriptions(
    grpc::CallbackServerContext* ctx, const v1::ListWebhookSubscriptionsRequest*,
    v1::ListWebhookSubscriptionsResponse* resp) {
  absl::StatusOr<Principal> principal = approvals_.Authenticate(ctx);
  return approvals_.Dispatch(ctx, "ListWebhookSubscriptions", principal, NeedsAdmin(principal), "",
                             nullptr, [this, resp](absl::Time) -> absl::Status {
                               ASSIGN_OR_RETURN(std::vector<db::WebhookSubscriptionRow> rows,
                                                store_.List());
                               for (const db::WebhookSubscriptionRow& row : rows) {
                                 Fill(row, resp->add_subscriptions());
                               }
                               return absl::OkStatus();
                             });
}

grpc::ServerUnaryReactor* WebhookServiceImpl::RedeliverWebhookSubscription(
    grpc::CallbackServerContext* ctx, const v1::RedeliverWebhookSubscriptionRequest* req,
    v1::WebhookSubscription* resp) {
  absl::StatusOr<Principal> principal = approvals_.Authenticate(ctx);
  absl::Status check = NeedsAdmin(principal);
  static const LazyRE2 kName = {"[a-z][a-z0-9_.-]{0,63}"};
  if (check.ok() && !RE2::FullMatch(req->name(), *kName)) {
    check = db::FieldError("name", "must name a webhook subscription of the config");
  }
  return approvals_.Dispatch(ctx, "RedeliverWebhookSubscription", principal, check, "", nullptr,
                             [this, req, resp](absl::Time) -> absl::Status {
                               ASSIGN_OR_RETURN(db::WebhookSubscriptionRow row,
                                                store_.Redeliver(req->name()));
                               if (on_redeliver_) on_redeliver_();
                               Fill(row, resp);
                               return absl::OkStatus();
                             });
}

}  // namespace approvald::server
