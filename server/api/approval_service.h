#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "approvals/v1/approvals.grpc.pb.h"
#include "db/approval_store.h"
#include "handlers/handler_registry.h"
#include "server/api/page_token.h"
#include "server/api/validation.h"
#include "server/auth/token_store.h"
#include "server/executor.h"
#include "server/ops/memory_budget.h"
#include "server/ops/metrics.h"
#include "server/watch/event_hub.h"

namespace spdlog {
class logger;
}

namespace approvald::server {

struct ServiceOptions {
  Limits limits;
  absl::Duration default_ttl = absl::Hours(24);
  /// Bounds calls that come without a deadline.
  absl::Duration default_deadline = absl::Seconds(30);
  std::shared_ptr<spdlog::logger> logger;
  /// The daemon's event listener for WatchApprovals (UNAVAILABLE without one).
  EventHub* hub = nullptr;
  /// Events a watcher may fall behind before its stream ends with RESOURCE_EXHAUSTED.
  size_t watch_buffer = 1024;
  /// Their size in memory (shared with the other streams).
  size_t watch_buffer_bytes = 16 * 1024 * 1024;
  /// What replaying streams and list pages may hold in all (null: unbounded).
  MemoryBudget* budget = nullptr;
  /// mTLS: the verified client certificate names the principal (SAN URI or DNS, else CN).
  bool principal_from_cert = false;
  /// The secret by which the HTTP gateway vouches for a client certificate it verified.
  std::string gateway_cert_secret;
  Metrics* metrics = nullptr;
  /// Log each created approval's action_data (off by default: it may hold personal data).
  bool log_action_data = false;
};

/// The gRPC edge of ApprovalService: authenticates, validates, hands the work to the executor
/// (database calls never run on gRPC threads) and maps the result. WatchApprovals streams from
/// the daemon's EventHub; ListActionTypes answers from memory.
class ApprovalServiceImpl final : public approvals::v1::ApprovalService::CallbackService {
 public:
  ApprovalServiceImpl(db::ApprovalStore& store,
                      std::shared_ptr<const handlers::HandlerRegistry> registry,
                      std::shared_ptr<const TokenStore> tokens, PageTokenCodec page_tokens,
                      Executor& executor, ServiceOptions options);

  /// Swaps the action types used for new calls (e.g. a reloaded config); calls in flight keep
  /// the registry they started with.
  void SetRegistry(std::shared_ptr<const handlers::HandlerRegistry> registry);
  std::shared_ptr<const handlers::HandlerRegistry> registry() const;

  /// Swaps the tokens used for new calls (e.g. on SIGHUP).
  void SetTokens(std::shared_ptr<const TokenStore> tokens);

  /// Shutdown, first step: every new call answers UNAVAILABLE at once ("shutting down").
  void StartDraining() { draining_ = true; }
  /// Waits until no unary call is in flight, or `deadline`; true if none is.
  [[nodiscard]] bool WaitIdle(absl::Time deadline) const;
  /// Calls waiting for a worker.
  size_t queue_depth() const { return executor_.queue_depth(); }

  grpc::ServerUnaryReactor* CreateApproval(grpc::CallbackServerContext* ctx,
                                           const approvals::v1::CreateApprovalRequest* req,
                                           approvals::v1::Approval* resp) override;
  grpc::ServerUnaryReactor* GetApproval(grpc::CallbackServerContext* ctx,
                                        const approvals::v1::GetApprovalRequest* req,
                                        approvals::v1::Approval* resp) override;
  grpc::ServerUnaryReactor* ListApprovals(grpc::CallbackServerContext* ctx,
                                          const approvals::v1::ListApprovalsRequest* req,
                                          approvals::v1::ListApprovalsResponse* resp) override;
  grpc::ServerUnaryReactor* Approve(grpc::CallbackServerContext* ctx,
                                    const approvals::v1::ApproveRequest* req,
                                    approvals::v1::Approval* resp) override;
  grpc::ServerUnaryReactor* Reject(grpc::CallbackServerContext* ctx,
                                   const approvals::v1::RejectRequest* req,
                                   approvals::v1::Approval* resp) override;
  grpc::ServerUnaryReactor* CancelApproval(grpc::CallbackServerContext* ctx,
                                           const approvals::v1::CancelApprovalRequest* req,
                                           approvals::v1::Approval* resp) override;
  grpc::ServerWriteReactor<approvals::v1::ApprovalEvent>* WatchApprovals(
      grpc::CallbackServerContext* ctx, const approvals::v1::WatchApprovalsRequest* req) override;
  grpc::ServerUnaryReactor* ListActionTypes(grpc::CallbackServerContext* ctx,
                                            const approvals::v1::ListActionTypesRequest* req,
                                            approvals::v1::ListActionTypesResponse* resp) override;

 private:
  friend class ExecutionServiceImpl;  // share authentication, dispatch, logs and metrics
  friend class WebhookServiceImpl;
  using Work = std::function<absl::Status(absl::Time deadline)>;

  // What a call gets once SIGTERM has begun: retryable, elsewhere or after the restart.
  static absl::Status ShuttingDown();
  absl::StatusOr<Principal> Authenticate(grpc::CallbackServerContext* ctx) const;
  handlers::PolicyDefaults PolicyDefaults() const {
    return {options_.default_ttl, options_.limits.max_ttl};
  }
  // What the per-RPC log line says of a call besides its outcome.
  struct CallInfo {
    std::string method;
    std::string principal;    ///< empty if unauthenticated
    std::string approval_id;  ///< the approval named by the request (empty: none)
    const approvals::v1::Approval* result = nullptr;  ///< its id wins once set (Create)
    std::string request_id;
    absl::Time start;
  };

  // A call that passed its checks, until it is finished.
  struct Admitted {
    grpc::CallbackServerContext* ctx;
    grpc::ServerUnaryReactor* reactor;
    CallInfo call;
    absl::Time deadline;
  };
  // A first try that blocks no thread (the store's StartCreate, StartDecideAtOnce): true if
  // started, and then whatever completes it finishes `call` (or runs the blocking work).
  using Start = std::function<bool(std::shared_ptr<const Admitted> call)>;

  // This process committed events: the event hub reads them now rather than at its next poll.
  void PokeEventHub() const;
  // Answers `precheck` at once if it failed; else tries `start` (if given), and otherwise runs
  // `work` on the executor, and finishes. `approval_id` and `result` only feed the log line.
  // `reactor`: the call's own (e.g. one that holds memory until the call is done), else the
  // default reactor.
  grpc::ServerUnaryReactor* Dispatch(grpc::CallbackServerContext* ctx, absl::string_view method,
                                     const absl::StatusOr<Principal>& principal,
                                     absl::Status precheck, absl::string_view approval_id,
                                     const approvals::v1::Approval* result, Work work,
                                     grpc::ServerUnaryReactor* reactor = nullptr,
                                     const Start& start = nullptr);
  // Runs `work` on the executor, then finishes the call with its status.
  void RunBlocking(const Admitted& call, Work work);
  // A call's record for its log line: starts its clock and takes (or makes) its request id.
  static CallInfo StartCall(grpc::CallbackServerContext* ctx, absl::string_view method,
                            const absl::StatusOr<Principal>& principal);
  void Finish(grpc::ServerUnaryReactor* reactor, const CallInfo& call, const absl::Status& status);
  // The per-RPC log line and the RPC metrics; `extra` is appended to the line.
  void RecordRpc(const CallInfo& call, const absl::Status& status,
                 absl::string_view extra = "") const;
  static std::string RequestId(grpc::CallbackServerContext* ctx);
  static std::string CertificateIdentity(const grpc::CallbackServerContext& ctx);
  /// The identity of a client certificate that the HTTP gateway verified, or "".
  std::string GatewayCertificateIdentity(
      const std::multimap<grpc::string_ref, grpc::string_ref>& md) const;
  db::CreateInput CreateInputFor(const Principal& p, const handlers::ActionType& type,
                                 const approvals::v1::CreateApprovalRequest& req,
                                 std::string action_data_json) const;
  absl::Status CreateWork(const db::CreateInput& in, approvals::v1::Approval* resp);
  // What a create that committed answers (and tells the event hub, metrics and log).
  absl::Status Created(const db::CreateInput& in, const db::CreateResult& created,
                       approvals::v1::Approval* resp);
  // The decision rules of `p`'s call (they keep their own copy of `p`).
  std::shared_ptr<const db::DecisionRules> RulesFor(const Principal& p,
                                                    db::Decision decision) const;
  // The first tries of a create and a decision (server/api/started_calls.cc); `blocking` is the
  // work that answers when they do not.
  bool StartCreate(std::shared_ptr<db::CreateInput> in, approvals::v1::Approval* resp,
                   std::shared_ptr<const Admitted> call, Work blocking);
  bool StartDecide(const Principal& p, db::DecideInput in, approvals::v1::Approval* resp,
                   std::shared_ptr<const Admitted> call, Work blocking);
  // `held`: bytes of the page charged to the memory budget, given back when the call is done.
  absl::Status ListWork(const approvals::v1::ListApprovalsRequest& req, absl::Time deadline,
                        approvals::v1::ListApprovalsResponse* resp, size_t* held);
  absl::Status DecideWork(const Principal& p, db::DecideInput in, approvals::v1::Approval* resp);
  // Approve, Reject and CancelApproval: one call with its decision and its text (the comment
  // or reason, which lives in `req`).
  template <typename Req>
  grpc::ServerUnaryReactor* DecideCall(grpc::CallbackServerContext* ctx, absl::string_view method,
                                       absl::Status valid, db::Decision decision, const Req* req,
                                       const std::string* text, approvals::v1::Approval* resp);
  // Validates the request; on success `*action_data_json` is its action_data as JSON.
  absl::Status PrecheckCreate(const Principal& p, const handlers::ActionType* type,
                              const approvals::v1::CreateApprovalRequest& req,
                              std::string* action_data_json) const;

  db::ApprovalStore& store_;
  std::atomic<bool> draining_{false};
  std::atomic<int> in_flight_{0};  ///< unary calls between their start and Finish
  mutable std::mutex mu_;
  std::shared_ptr<const handlers::HandlerRegistry> registry_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<const TokenStore> tokens_ ABSL_GUARDED_BY(mu_);
  const PageTokenCodec page_tokens_;
  Executor& executor_;
  const ServiceOptions options_;
};

}  // namespace approvald::server
