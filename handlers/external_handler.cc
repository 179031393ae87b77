#include "handlers/external_handler.h"

#include <algorithm>
#include <cmath>

#include "handlers/handler_kinds.h"

namespace approvald::handlers {

absl::Duration ExecutorPolicy::Backoff(int attempt, double unit) const {
  const double doublings = std::min(std::max(attempt - 1, 0), 40);
  const absl::Duration base = std::min(backoff_max, backoff_initial * std::pow(2.0, doublings));
  return base * (1.0 + jitter * (2.0 * unit - 1.0));
}

absl::Status ExternalHandler::Validate(const google::protobuf::Struct&) const {
  return absl::OkStatus();
}

absl::StatusOr<google::protobuf::Struct> ExternalHandler::Execute(db::Tx&,
                                                                  const db::ApprovalRecord&) {
  return absl::InternalError("an external action is enqueued for its workers, not run here");
}

namespace {

absl::StatusOr<std::shared_ptr<ActionHandler>> BuildExternal(const ConfigReader& r,
                                                             const YAML::Node& entry,
                                                             const std::string& path,
                                                             const ActionType&) {
  ExecutorPolicy p;
  if (!entry["executor_roles"]) {
    return r.Error(entry, path, "an external type needs executor_roles (who runs it)");
  }
  CONFIG_TRY(r.StringList(entry["executor_roles"], path + ".executor_roles", &p.executor_roles));
  if (p.executor_roles.empty()) {
    return r.Error(entry["executor_roles"], path + ".executor_roles", "must name a role");
  }
  if (entry["lease"]) CONFIG_TRY(r.Duration(entry["lease"], path + ".lease", &p.lease));
  if (p.lease < absl::Seconds(1) || p.lease > absl::Hours(24)) {
    return r.Error(entry["lease"], path + ".lease", "must be between 1s and 24h");
  }
  if (entry["max_attempts"]) {
    int64_t n = 0;
    CONFIG_TRY(r.Int(entry["max_attempts"], path + ".max_attempts", &n));
    if (n < 1 || n > 100) {
      return r.Error(entry["max_attempts"], path + ".max_attempts", "must be 1 to 100");
    }
    p.max_attempts = static_cast<int>(n);
  }
  if (const YAML::Node b = entry["backoff"]) {
    const std::string at = path + ".backoff";
    CONFIG_TRY(r.CheckKeys(b, at, {"initial", "max", "jitter"}));
    if (b["initial"]) CONFIG_TRY(r.Duration(b["initial"], at + ".initial", &p.backoff_initial));
    if (b["max"]) CONFIG_TRY(r.Duration(b["max"], at + ".max", &p.backoff_max));
    if (b["jitter"]) {
      CONFIG_TRY(r.Number(b["jitter"], at + ".jitter", &p.jitter));
      if (p.jitter < 0 || p.jitter > 1) {
        return r.Error(b["jitter"], at + ".jitter", "must be between 0 and 1");
      }
    }
    if (p.backoff_max < p.backoff_initial || p.backoff_max > absl::Hours(24)) {
      return r.Error(b, at + ".max", "must be at least initial and at most 24h");
    }
  }
  return std::make_shared<ExternalHandler>(std::move(p));
}

}  // namespace

HandlerKind ExternalKind() {
  return {"external", {"executor_roles", "lease", "max_attempts", "backoff"}, &BuildExternal};
}

}  // namespace approvald::handlers
