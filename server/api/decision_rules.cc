#include "server/api/decision_rules.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "handlers/external_handler.h"
#include "server/api/proto_convert.h"

namespace approvald::server {

PolicyRules::PolicyRules(std::shared_ptr<const handlers::HandlerRegistry> registry,
                         const handlers::Caller& caller, db::Decision decision, Metrics* metrics,
                         OnChange on_change)
    : registry_(std::move(registry)),
      caller_(caller),
      decision_(decision),
      metrics_(metrics),
      on_change_(std::move(on_change)) {}

absl::StatusOr<db::DecisionPolicy> PolicyRules::Authorize(const db::ApprovalRecord& a) const {
  return handlers::MayDecide(registry_->Find(a.action_type), caller_, a, decision_);
}

absl::StatusOr<std::string> PolicyRules::Execute(db::Tx& tx, const db::ApprovalRecord& a) const {
  const handlers::ActionType* type = registry_->Find(a.action_type);
  if (type == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("no handler is configured for action type ", a.action_type));
  }
  db::ApprovalRecord deciding = a;
  deciding.decided_by = caller_.name;
  const absl::Time started = absl::Now();
  absl::StatusOr<google::protobuf::Struct> result = type->handler->Execute(tx, deciding);
  if (metrics_) {
    metrics_->RecordHandler(a.action_type, absl::ToDoubleSeconds(absl::Now() - started));
  }
  if (!result.ok()) return result.status();
  return StructToJson(*result);
}

std::optional<db::ExternalExecution> PolicyRules::External(const db::ApprovalRecord& a) const {
  const handlers::ActionType* type = registry_->Find(a.action_type);
  if (type == nullptr || type->handler->executor() == nullptr) return std::nullopt;
  return db::ExternalExecution{type->handler->executor()->max_attempts};
}

std::optional<db::DecideAtOnce> PolicyRules::AtOnce() const {
  return handlers::DecideAtOnceFor(*registry_, caller_, decision_);
}

void PolicyRules::Changed(const std::string& type, const std::string& status) const {
  on_change_(type, status);
}

}  // namespace approvald::server
