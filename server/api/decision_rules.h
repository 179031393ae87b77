#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "db/approval_store.h"
#include "handlers/handler_registry.h"
#include "handlers/policy.h"
#include "server/ops/metrics.h"

namespace approvald::server {

/// A decision's rules: handlers/policy.h's, with the action types as configured when the call
/// began (a reload during the call does not change them). The handler's time is recorded in
/// `metrics` (may be null); `on_change` hears what the call changed.
class PolicyRules final : public db::DecisionRules {
 public:
  using OnChange = std::function<void(const std::string& type, const std::string& status)>;
  PolicyRules(std::shared_ptr<const handlers::HandlerRegistry> registry,
              const handlers::Caller& caller, db::Decision decision, Metrics* metrics,
              OnChange on_change);

  absl::StatusOr<db::DecisionPolicy> Authorize(const db::ApprovalRecord& a) const override;
  absl::StatusOr<std::string> Execute(db::Tx& tx, const db::ApprovalRecord& a) const override;
  std::optional<db::DecideAtOnce> AtOnce() const override;
  std::optional<db::ExternalExecution> External(const db::ApprovalRecord& a) const override;
  void Changed(const std::string& type, const std::string& status) const override;

 private:
  const std::shared_ptr<const handlers::HandlerRegistry> registry_;
  const handlers::Caller& caller_;
  const db::Decision decision_;
  Metrics* const metrics_;
  const OnChange on_change_;
};

}  // namespace approvald::server
