// ListActionTypes: answered from memory, on the gRPC thread.

#include "handlers/external_handler.h"
#include "server/api/approval_service.h"
#include "server/api/proto_convert.h"

namespace approvald::server {

namespace v1 = approvals::v1;

grpc::ServerUnaryReactor* ApprovalServiceImpl::ListActionTypes(grpc::CallbackServerContext* ctx,
                                                               const v1::ListActionTypesRequest*,
                                                               v1::ListActionTypesResponse* resp) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  in_flight_.fetch_add(1);
  absl::StatusOr<Principal> principal = Authenticate(ctx);
  CallInfo call = StartCall(ctx, "ListActionTypes", principal);
  if (principal.ok()) {
    // In memory only: answered on the gRPC thread without touching the database.
    const std::shared_ptr<const handlers::HandlerRegistry> registry = this->registry();
    for (const handlers::ActionType* t : registry->All()) {
      v1::ActionType* out = resp->add_action_types();
      out->set_name(t->name);
      out->set_description(t->description);
      *out->mutable_parameters_schema() = handlers::ParametersSchema(*t);
      for (const auto& role : t->policy.approver_roles) out->add_approver_roles(role);
      const handlers::TtlBounds ttl = handlers::EffectiveTtl(*t, PolicyDefaults());
      *out->mutable_default_ttl() = ToDuration(ttl.default_ttl);
      *out->mutable_max_ttl() = ToDuration(ttl.max_ttl);
      out->set_required_approvals(t->policy.required_approvals);
      out->set_handler(t->handler_kind);
      if (const handlers::ExecutorPolicy* x = t->handler->executor()) {
        v1::ExecutorPolicy* p = out->mutable_executor();
        for (const auto& role : x->executor_roles) p->add_executor_roles(role);
        *p->mutable_lease() = ToDuration(x->lease);
        p->set_max_attempts(x->max_attempts);
        *p->mutable_backoff_initial() = ToDuration(x->backoff.initial);
        *p->mutable_backoff_max() = ToDuration(x->backoff.max);
      }
    }
  }
  Finish(reactor, call, principal.status());
  return reactor;
}

}  // namespace approvald::server
