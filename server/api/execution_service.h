#pragma once

#include <memory>
#include <string>
#include <vector>

#include "approvals/v1/approvals.grpc.pb.h"
#include "db/execution_store.h"
#include "server/api/approval_service.h"
#include "server/api/claim_waiters.h"

namespace approvald::server {

/// The gRPC edge of ExecutionService: workers claim the executions of external action types,
/// extend their leases, complete or fail them. Authentication, the executor, logs and metrics
/// are ApprovalServiceImpl's; a caller needs one of each type's executor_roles.
class ExecutionServiceImpl final : public approvals::v1::ExecutionService::CallbackService {
 public:
  ExecutionServiceImpl(ApprovalServiceImpl& approvals, db::ExecutionStore& store, EventHub* hub);

  /// Shutdown: waiting claims answer what they have (nothing) at once.
  void Stop() { waiters_.Stop(); }

  grpc::ServerUnaryReactor* ClaimExecutions(grpc::CallbackServerContext* ctx,
                                            const approvals::v1::ClaimExecutionsRequest* req,
                                            approvals::v1::ClaimExecutionsResponse* resp) override;
  grpc::ServerUnaryReactor* ExtendLease(grpc::CallbackServerContext* ctx,
                                        const approvals::v1::ExtendLeaseRequest* req,
                                        approvals::v1::Execution* resp) override;
  grpc::ServerUnaryReactor* CompleteExecution(grpc::CallbackServerContext* ctx,
                                              const approvals::v1::CompleteExecutionRequest* req,
                                              approvals::v1::Execution* resp) override;
  grpc::ServerUnaryReactor* FailExecution(grpc::CallbackServerContext* ctx,
                                          const approvals::v1::FailExecutionRequest* req,
                                          approvals::v1::Execution* resp) override;

 private:
  struct WaitingClaim;
  /// One try of a waiting claim, on the executor; `last`: answer whatever it finds.
  void TryWaitingClaim(const std::shared_ptr<WaitingClaim>& w, bool last);
  void FinishWaiting(const std::shared_ptr<WaitingClaim>& w, const absl::Status& status);
  /// Parks a waiting claim whose try found nothing.
  void Park(const std::shared_ptr<WaitingClaim>& w);
  /// The external types the caller may work on.
  std::vector<std::string> ExecutableTypes(const Principal& p) const;

  /// The external type named `name`, if the caller may work on it.
  absl::StatusOr<const handlers::ActionType*> ExecutableType(
      const handlers::HandlerRegistry& registry, const Principal& p, const std::string& name) const;
  db::MayExecute MayExecute(const Principal& p) const;
  /// The store's claim for `req`; its lease is the request's, else the longest of the types'.
  absl::StatusOr<db::ClaimResult> Claim(const Principal& p,
                                        const approvals::v1::ClaimExecutionsRequest& req,
                                        absl::Time deadline) const;

  ApprovalServiceImpl& approvals_;
  db::ExecutionStore& store_;
  ClaimWaiters waiters_;
};

}  // namespace approvald::server
