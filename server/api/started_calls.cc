// ApprovalServiceImpl: creates and decisions tried first without blocking a thread (the
// store's StartCreate and StartDecideAtOnce, answered by the thread that commits them), with
// their blocking work as the way out of every other case.

#include <spdlog/spdlog.h>

#include "db/status_macros.h"
#include "server/api/approval_service.h"
#include "server/api/decision_rules.h"
#include "server/api/proto_convert.h"

namespace approvald::server {

namespace v1 = approvals::v1;

namespace {

// PolicyRules refers to its caller: this keeps the principal alive with them.
struct OwnedRules {
  OwnedRules(Principal p, std::shared_ptr<const handlers::HandlerRegistry> registry,
             db::Decision decision, Metrics* metrics, PolicyRules::OnChange on_change)
      : principal(std::move(p)),
        rules(std::move(registry), principal, decision, metrics, std::move(on_change)) {}
  const Principal principal;
  const PolicyRules rules;
};

}  // namespace

std::shared_ptr<const db::DecisionRules> ApprovalServiceImpl::RulesFor(
    const Principal& p, db::Decision decision) const {
  auto owned = std::make_shared<const OwnedRules>(
      p, registry(), decision, options_.metrics,
      [this](const std::string& type, const std::string& status) {
        PokeEventHub();  // a change committed an event
        if (options_.metrics && status != db::kPending) {
          options_.metrics->RecordDecided(type, status);
        }
      });
  return std::shared_ptr<const db::DecisionRules>(owned, &owned->rules);
}

absl::Status ApprovalServiceImpl::Created(const db::CreateInput& in,
                                          const db::CreateResult& created, v1::Approval* resp) {
  if (created.created) {
    PokeEventHub();
    if (options_.metrics) options_.metrics->RecordCreated(in.action_type);
    if (options_.log_action_data && options_.logger) {
      options_.logger->info("approval {} created: action_type={} action_data={}",
                            created.approval.id, in.action_type, in.action_data_json);
    }
  }
  return ToProto(created.approval, resp);
}

bool ApprovalServiceImpl::StartCreate(std::shared_ptr<db::CreateInput> in, v1::Approval* resp,
                                      std::shared_ptr<const Admitted> call, Work blocking) {
  const db::CreateInput& input = *in;
  return store_.StartCreate(
      input, [this, in = std::move(in), resp, call = std::move(call),
              blocking = std::move(blocking)](db::AsyncOutcome<db::CreateResult> out) {
        if (out.settle) {
          RunBlocking(*call, [this, in, resp, settle = std::move(out.settle)](absl::Time) {
            ASSIGN_OR_RETURN(db::CreateResult created, settle());
            return Created(*in, created, resp);
          });
        } else if (!out.result.ok()) {
          Finish(call->reactor, call->call, out.result.status());
        } else if (!out.result->has_value()) {
          RunBlocking(*call, blocking);
        } else {
          Finish(call->reactor, call->call, Created(*in, **out.result, resp));
        }
      });
}

bool ApprovalServiceImpl::StartDecide(const Principal& p, db::DecideInput in, v1::Approval* resp,
                                      std::shared_ptr<const Admitted> call, Work blocking) {
  in.actor = p.name;
  std::shared_ptr<const db::DecisionRules> rules = RulesFor(p, in.decision);
  const std::optional<db::DecideAtOnce> once = rules->AtOnce();
  if (!once) return false;
  return store_.StartDecideAtOnce(
      in, *once,
      [this, rules = std::move(rules), resp, call = std::move(call),
       blocking = std::move(blocking)](db::AsyncOutcome<db::ApprovalRecord> out) {
        if (out.settle) {
          RunBlocking(*call, [rules, resp, settle = std::move(out.settle)](absl::Time) {
            ASSIGN_OR_RETURN(db::ApprovalRecord decided, settle());
            rules->Changed(decided.action_type, decided.status);
            return ToProto(decided, resp);
          });
        } else if (!out.result.ok()) {
          Finish(call->reactor, call->call, out.result.status());
        } else if (!out.result->has_value()) {
          RunBlocking(*call, blocking);
        } else {
          const db::ApprovalRecord& decided = **out.result;
          rules->Changed(decided.action_type, decided.status);
          Finish(call->reactor, call->call, ToProto(decided, resp));
        }
      });
}

}  // namespace approvald::server
