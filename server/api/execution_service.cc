// ExecutionService: workers claim, extend, complete and fail the executions of external types.

#include "server/api/execution_service.h"

#include <algorithm>
#include <atomic>

#include "absl/random/random.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "db/errors.h"
#include "db/status_macros.h"
#include "handlers/external_handler.h"
#include "server/api/proto_convert.h"
#include "server/api/validation.h"

namespace approvald::server {

namespace v1 = approvals::v1;

namespace {

absl::Duration FromProto(const google::protobuf::Duration& d) {
  return absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
}

}  // namespace

/// A ClaimExecutions call with `wait`: parked with the ClaimWaiters between tries. Shared by
/// the reactor (for OnCancel) and the waiters' callback, which may outlive the call.
struct ExecutionServiceImpl::WaitingClaim {
  grpc::CallbackServerContext* ctx = nullptr;
  grpc::ServerUnaryReactor* reactor = nullptr;
  v1::ClaimExecutionsRequest request;
  v1::ClaimExecutionsResponse* response = nullptr;
  Principal principal;
  ApprovalServiceImpl::CallInfo call;
  absl::Time end;
  std::atomic<uint64_t> id{0};
  std::atomic<bool> finished{false};
};

namespace {

// The reactor of a waiting claim: a cancelled call answers at once.
class WaitingReactor final : public grpc::ServerUnaryReactor {
 public:
  explicit WaitingReactor(std::function<void()> cancelled) : cancelled_(std::move(cancelled)) {}
  void OnCancel() override { cancelled_(); }
  void OnDone() override { delete this; }

 private:
  std::function<void()> cancelled_;
};

}  // namespace

ExecutionServiceImpl::ExecutionServiceImpl(ApprovalServiceImpl& approvals,
                                           db::ExecutionStore& store, EventHub* hub)
    : approvals_(approvals), store_(store), waiters_(hub) {}

absl::StatusOr<const handlers::ActionType*> ExecutionServiceImpl::ExecutableType(
    const handlers::HandlerRegistry& registry, const Principal& p, const std::string& name) const {
  const handlers::ActionType* type = registry.Find(name);
  if (type == nullptr || type->handler->executor() == nullptr) {
    return db::ReasonError(absl::StatusCode::kInvalidArgument, v1::UNKNOWN_ACTION_TYPE,
                           absl::StrCat(name, " is not an action type with handler: external"),
                           {{"action_type", name}});
  }
  if (type->handler->webhook() != nullptr) {
    return db::ReasonError(absl::StatusCode::kPermissionDenied, v1::ROLE_REQUIRED,
                           absl::StrCat(name, " is a webhook type: approvald runs it itself"),
                           {{"action_type", name}});
  }
  const std::vector<std::string>& roles = type->handler->executor()->executor_roles;
  if (!handlers::HasAnyRole(p.roles, roles)) {
    return db::ReasonError(
        absl::StatusCode::kPermissionDenied, v1::ROLE_REQUIRED,
        absl::StrCat("executing ", name, " needs one of the roles: ", absl::StrJoin(roles, ", ")),
        {{"required_roles", absl::StrJoin(roles, ",")}});
  }
  return type;
}

std::vector<std::string> ExecutionServiceImpl::ExecutableTypes(const Principal& p) const {
  std::vector<std::string> types;
  for (const handlers::ActionType* t : approvals_.registry()->All()) {
    const handlers::ExecutorPolicy* x = t->handler->executor();
    if (x != nullptr && t->handler->webhook() == nullptr &&
        handlers::HasAnyRole(p.roles, x->executor_roles)) {
      types.push_back(t->name);
    }
  }
  return types;
}

db::MayExecute ExecutionServiceImpl::MayExecute(const Principal& p) const {
  return [this, p, registry = approvals_.registry()](const std::string& type) {
    return ExecutableType(*registry, p, type).status();
  };
}

absl::StatusOr<db::ClaimResult> ExecutionServiceImpl::Claim(const Principal& p,
                                                            const v1::ClaimExecutionsRequest& req,
                                                            absl::Time deadline) const {
  const std::shared_ptr<const handlers::HandlerRegistry> registry = approvals_.registry();
  db::ClaimInput in;
  in.lease = FromProto(req.lease_duration());
  const bool type_lease = in.lease == absl::ZeroDuration();
  for (const std::string& name : req.action_types()) {
    ASSIGN_OR_RETURN(const handlers::ActionType* type, ExecutableType(*registry, p, name));
    if (type_lease) in.lease = std::max(in.lease, type->handler->executor()->lease);
    in.action_types.push_back(name);
  }
  std::sort(in.action_types.begin(), in.action_types.end());
  in.action_types.erase(std::unique(in.action_types.begin(), in.action_types.end()),
                        in.action_types.end());
  in.max = std::max(req.max_executions(), 1);
  in.worker = p.name;
  in.deadline = deadline;
  ASSIGN_OR_RETURN(db::ClaimResult result, store_.Claim(in));
  approvals_.PokeEventHub();
  return result;
}

grpc::ServerUnaryReactor* ExecutionServiceImpl::ClaimExecutions(
    grpc::CallbackServerContext* ctx, const v1::ClaimExecutionsRequest* req,
    v1::ClaimExecutionsResponse* resp) {
  absl::StatusOr<Principal> principal = approvals_.Authenticate(ctx);
  const absl::Status valid = ValidateClaim(*req);
  const absl::Duration wait = FromProto(req->wait());
  if (!principal.ok() || !valid.ok() || wait == absl::ZeroDuration() || approvals_.draining_) {
    return approvals_.Dispatch(
        ctx, "ClaimExecutions", principal, valid, "", nullptr,
        [this, p = principal.value_or(Principal()), req, resp](absl::Time deadline) {
          ASSIGN_OR_RETURN(db::ClaimResult result, Claim(p, *req, deadline));
          for (const db::ExecutionRecord& x : result.claimed) {
            RETURN_IF_ERROR(ExecutionToProto(x, resp->add_executions()));
          }
          return absl::OkStatus();
        });
  }
  auto w = std::make_shared<WaitingClaim>();
  w->ctx = ctx;
  w->request = *req;
  w->response = resp;
  w->principal = *principal;
  w->call = ApprovalServiceImpl::StartCall(ctx, "ClaimExecutions", principal);
  // The wait ends a little before the call's deadline, so that the answer still reaches it.
  w->end = w->call.start + wait;
  if (ctx->deadline() != std::chrono::system_clock::time_point::max()) {
    w->end = std::min(w->end, absl::FromChrono(ctx->deadline()) - absl::Milliseconds(200));
  }
  w->reactor = new WaitingReactor([this, w] { FinishWaiting(w, absl::CancelledError()); });
  approvals_.in_flight_.fetch_add(1);
  TryWaitingClaim(w, /*last=*/false);  // parked only if this first try finds nothing
  return w->reactor;
}

void ExecutionServiceImpl::Park(const std::shared_ptr<WaitingClaim>& w) {
  // Its first wake is at once: an event between the try that found nothing and now would
  // otherwise be missed.
  const uint64_t id =
      waiters_.Park({w->request.action_types().begin(), w->request.action_types().end()},
                    absl::InfinitePast(), w->end, [this, w](uint64_t id, bool last) {
                      w->id = id;  // the first wake may come before Park returns
                      TryWaitingClaim(w, last);
                    });
  if (id == 0) return FinishWaiting(w, absl::OkStatus());  // stopping: nothing, now
  w->id = id;
  // Cancelled before its id was known here: the waiter goes now.
  if (w->finished.load()) waiters_.Remove(id);
}

void ExecutionServiceImpl::TryWaitingClaim(const std::shared_ptr<WaitingClaim>& w, bool last) {
  if (w->finished.load()) return waiters_.Remove(w->id);
  const bool queued = approvals_.executor_.TrySubmit([this, w, last] {
    if (w->finished.load()) return waiters_.Remove(w->id);
    if (w->ctx->IsCancelled()) return FinishWaiting(w, absl::CancelledError());
    const absl::Time now = absl::Now();
    absl::StatusOr<db::ClaimResult> result =
        Claim(w->principal, w->request, now + approvals_.options_.default_deadline);
    if (!result.ok()) return FinishWaiting(w, result.status());
    if (!result->claimed.empty() || last || now >= w->end || approvals_.draining_) {
      for (const db::ExecutionRecord& x : result->claimed) {
        if (absl::Status st = ExecutionToProto(x, w->response->add_executions()); !st.ok()) {
          return FinishWaiting(w, st);
        }
      }
      return FinishWaiting(w, absl::OkStatus());
    }
    // Nothing due: next when the store says one will be (or an event says so first).
    if (w->id == 0) return Park(w);
    // One due but held by another claim: it is theirs in a moment; look again shortly.
    const absl::Duration next = result->next_due
                                    ? std::max(*result->next_due, absl::Milliseconds(10))
                                    : w->end - absl::Now();
    waiters_.Rearm(w->id, absl::Now() + next);
  });
  if (!queued) {
    FinishWaiting(
        w, absl::ResourceExhaustedError("approvald is overloaded (work queue full); retry later"));
  }
}

void ExecutionServiceImpl::FinishWaiting(const std::shared_ptr<WaitingClaim>& w,
                                         const absl::Status& status) {
  if (w->finished.exchange(true)) return;
  waiters_.Remove(w->id);
  approvals_.Finish(w->reactor, w->call, status);
}

grpc::ServerUnaryReactor* ExecutionServiceImpl::ExtendLease(grpc::CallbackServerContext* ctx,
                                                            const v1::ExtendLeaseRequest* req,
                                                            v1::Execution* resp) {
  absl::StatusOr<Principal> principal = approvals_.Authenticate(ctx);
  return approvals_.Dispatch(
      ctx, "ExtendLease", principal, ValidateExtend(*req), "", nullptr,
      [this, p = principal.value_or(Principal()), req, resp](absl::Time deadline) {
        const std::shared_ptr<const handlers::HandlerRegistry> registry = approvals_.registry();
        absl::Duration lease = FromProto(req->lease_duration());
        // The default lease is the type's, known once the execution is read.
        db::MayExecute may_and_lease = [&](const std::string& type) -> absl::Status {
          ASSIGN_OR_RETURN(const handlers::ActionType* t, ExecutableType(*registry, p, type));
          if (lease == absl::ZeroDuration()) lease = t->handler->executor()->lease;
          return absl::OkStatus();
        };
        ASSIGN_OR_RETURN(db::ExecutionRecord x,
                         store_.Extend({req->execution_id(), req->lease_token(), p.name, deadline,
                                        lease == absl::ZeroDuration()
                                            ? std::vector<std::string>()  // needs the type's
                                            : ExecutableTypes(p)},
                                       lease, may_and_lease));
        return ExecutionToProto(x, resp);
      });
}

grpc::ServerUnaryReactor* ExecutionServiceImpl::CompleteExecution(
    grpc::CallbackServerContext* ctx, const v1::CompleteExecutionRequest* req,
    v1::Execution* resp) {
  absl::StatusOr<Principal> principal = approvals_.Authenticate(ctx);
  auto result_json = std::make_shared<std::string>();
  const absl::Status valid = ValidateComplete(*req, approvals_.options_.limits, result_json.get());
  return approvals_.Dispatch(
      ctx, "CompleteExecution", principal, valid, "", nullptr,
      [this, p = principal.value_or(Principal()), req, resp, result_json](absl::Time deadline) {
        ASSIGN_OR_RETURN(db::ExecutionRecord x,
                         store_.Complete({req->execution_id(), req->lease_token(), p.name, deadline,
                                          ExecutableTypes(p)},
                                         *result_json, MayExecute(p)));
        approvals_.PokeEventHub();
        return ExecutionToProto(x, resp);
      });
}

grpc::ServerUnaryReactor* ExecutionServiceImpl::FailExecution(grpc::CallbackServerContext* ctx,
                                                              const v1::FailExecutionRequest* req,
                                                              v1::Execution* resp) {
  absl::StatusOr<Principal> principal = approvals_.Authenticate(ctx);
  return approvals_.Dispatch(
      ctx, "FailExecution", principal, ValidateFail(*req, approvals_.options_.limits), "", nullptr,
      [this, p = principal.value_or(Principal()), req, resp](absl::Time deadline) {
        const std::shared_ptr<const handlers::HandlerRegistry> registry = approvals_.registry();
        db::RetryDelay retry;
        db::MayExecute may = [&](const std::string& type) -> absl::Status {
          ASSIGN_OR_RETURN(const handlers::ActionType* t, ExecutableType(*registry, p, type));
          if (req->retryable()) {
            retry = [policy = *t->handler->executor()](int attempt) {
              thread_local absl::BitGen bits;
              return policy.backoff.Delay(attempt, absl::Uniform(bits, 0.0, 1.0));
            };
          }
          return absl::OkStatus();
        };
        ASSIGN_OR_RETURN(db::ExecutionRecord x,
                         store_.Fail({req->execution_id(), req->lease_token(), p.name, deadline,
                                      /*types=*/{}},
                                     req->error(), retry, may));
        approvals_.PokeEventHub();
        return ExecutionToProto(x, resp);
      });
}

}  // namespace approvald::server
