#include "client/webhooks_command.h"

#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/time_util.h>

#include <iostream>

#include "absl/strings/str_format.h"
#include "approvals/v1/webhooks.grpc.pb.h"
#include "client/approval_client.h"
#include "client/output.h"

namespace approvald::client {
namespace {

namespace v1 = approvals::v1;

std::string Json(const google::protobuf::Message& m) {
  std::string out;
  (void)google::protobuf::util::MessageToJsonString(m, &out);
  return out;
}

std::string StateName(v1::WebhookSubscriptionState state) {
  return state == v1::WEBHOOK_SUBSCRIPTION_STATE_DEAD_LETTER ? "DEAD_LETTER" : "ACTIVE";
}

void PrintOne(const v1::WebhookSubscription& s) {
  std::cout << s.name() << "  " << StateName(s.state()) << "\n";
  if (s.configured()) {
    std::cout << "  url:        " << s.url_origin() << "/... (" << s.format() << ")\n";
  } else {
    std::cout << "  url:        (not in this replica's config)\n";
  }
  std::cout << "  cursor:     event " << s.cursor() << ", " << s.delivered() << " delivered\n";
  if (s.failing_event_id() != 0) {
    std::cout << "  failing:    event " << s.failing_event_id() << ", " << s.attempts()
              << " attempts: " << s.last_error() << "\n";
    if (s.has_next_attempt_time() && s.state() != v1::WEBHOOK_SUBSCRIPTION_STATE_DEAD_LETTER) {
      std::cout << "  next try:   "
                << google::protobuf::util::TimeUtil::ToString(s.next_attempt_time()) << "\n";
    }
  }
  if (s.has_dead_letter_time()) {
    std::cout << "  dead since: "
              << google::protobuf::util::TimeUtil::ToString(s.dead_letter_time())
              << " (approvalctl webhooks redeliver " << s.name() << ")\n";
  }
  if (!s.lease_holder().empty()) std::cout << "  delivered by " << s.lease_holder() << "\n";
}

int Usage(const std::string& why) {
  std::cerr << "approvalctl: " << why
            << "\nusage: approvalctl webhooks list | approvalctl webhooks redeliver NAME\n";
  return 2;
}

}  // namespace

int RunWebhooks(std::shared_ptr<grpc::Channel> channel, const std::string& token,
                absl::Duration timeout, const std::vector<std::string>& args, bool json) {
  auto stub = v1::WebhookService::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  if (!token.empty()) ctx.AddMetadata("authorization", "Bearer " + token);
  if (args.size() == 1 && args[0] == "list") {
    v1::ListWebhookSubscriptionsResponse resp;
    const grpc::Status st = stub->ListWebhookSubscriptions(&ctx, {}, &resp);
    if (!st.ok()) return PrintError(ToAbslStatus(st), json);
    if (json) {
      std::cout << Json(resp) << "\n";
      return 0;
    }
    if (resp.subscriptions().empty()) std::cout << "no webhook subscriptions\n";
    for (const v1::WebhookSubscription& s : resp.subscriptions()) PrintOne(s);
    return 0;
  }
  if (args.size() == 2 && args[0] == "redeliver") {
    v1::RedeliverWebhookSubscriptionRequest req;
    req.set_name(args[1]);
    v1::WebhookSubscription resp;
    const grpc::Status st = stub->RedeliverWebhookSubscription(&ctx, req, &resp);
    if (!st.ok()) return PrintError(ToAbslStatus(st), json);
    if (json) {
      std::cout << Json(resp) << "\n";
    } else {
      std::cout << "redelivering " << resp.name() << " from event " << resp.failing_event_id()
                << "\n";
    }
    return 0;
  }
  return Usage("unknown webhooks command");
}

}  // namespace approvald::client
