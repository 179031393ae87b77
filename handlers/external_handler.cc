#include "handlers/external_handler.h"

#include "handlers/handler_kinds.h"

namespace approvald::handlers {

absl::Status ExternalHandler::Validate(const google::protobuf::Struct&) const {
  return absl::OkStatus();
}

absl::StatusOr<google::protobuf::Struct> ExternalHandler::Execute(db::Tx&,
                                                                  const db::ApprovalRecord&) {
  return absl::InternalError("an external action is enqueued for its workers, not run here");
}

absl::Status ParseExecutorPolicy(const ConfigReader& r, const YAML::Node& entry,
                                 const std::string& path, bool roles_required, ExecutorPolicy* p) {
  if (entry["executor_roles"]) {
    CONFIG_TRY(r.StringList(entry["executor_roles"], path + ".executor_roles", &p->executor_roles));
  }
  if (roles_required && p->executor_roles.empty()) {
    return r.Error(entry, path + ".executor_roles",
                   "an external type needs executor_roles (who runs it)");
  }
  if (entry["lease"]) CONFIG_TRY(r.Duration(entry["lease"], path + ".lease", &p->lease));
  if (p->lease < absl::Seconds(1) || p->lease > absl::Hours(24)) {
    return r.Error(entry["lease"], path + ".lease", "must be between 1s and 24h");
  }
  if (entry["max_attempts"]) {
    int64_t n = 0;
    CONFIG_TRY(r.Int(entry["max_attempts"], path + ".max_attempts", &n));
    if (n < 1 || n > 100) {
      return r.Error(entry["max_attempts"], path + ".max_attempts", "must be 1 to 100");
    }
    p->max_attempts = static_cast<int>(n);
  }
  if (const YAML::Node b = entry["backoff"]) {
    CONFIG_TRY(ParseBackoff(r, b, path + ".backoff", &p->backoff));
  }
  return absl::OkStatus();
}

namespace {

absl::StatusOr<std::shared_ptr<ActionHandler>> BuildExternal(const ConfigReader& r,
                                                             const YAML::Node& entry,
                                                             const std::string& path,
                                                             const ActionType&) {
  ExecutorPolicy p;
  CONFIG_TRY(ParseExecutorPolicy(r, entry, path, /*roles_required=*/true, &p));
  return std::make_shared<ExternalHandler>(std::move(p));
}

}  // namespace

HandlerKind ExternalKind() {
  return {"external", {"executor_roles", "lease", "max_attempts", "backoff"}, &BuildExternal};
}

}  // namespace approvald::handlers
