#include "handlers/webhook_handler.h"

#include "handlers/handler_kinds.h"

namespace approvald::handlers {

absl::Status WebhookHandler::Validate(const google::protobuf::Struct&) const {
  return absl::OkStatus();
}

absl::StatusOr<google::protobuf::Struct> WebhookHandler::Execute(db::Tx&,
                                                                 const db::ApprovalRecord&) {
  return absl::InternalError("a webhook action is enqueued and posted by approvald, not run here");
}

namespace {

absl::StatusOr<std::shared_ptr<ActionHandler>> BuildWebhook(const ConfigReader& r,
                                                            const YAML::Node& entry,
                                                            const std::string& path,
                                                            const ActionType&) {
  ExecutorPolicy policy;
  CONFIG_TRY(ParseExecutorPolicy(r, entry, path, /*roles_required=*/false, &policy));
  WebhookTarget target;
  CONFIG_TRY(ParseWebhookTarget(r, entry, path, &target));
  // An attempt must end (or time out) well within its lease, or a second one could overlap.
  if (target.timeout * 2 > policy.lease) {
    return r.Error(entry, path + ".timeout", "must be at most half the lease");
  }
  return std::make_shared<WebhookHandler>(std::move(policy), std::move(target));
}

}  // namespace

HandlerKind WebhookKind() {
  std::vector<std::string> keys = WebhookTargetKeys();
  keys.insert(keys.end(), {"lease", "max_attempts", "backoff"});
  return {"webhook", std::move(keys), &BuildWebhook};
}

}  // namespace approvald::handlers
