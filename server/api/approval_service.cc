#include "server/api/approval_service.h"

#include <openssl/crypto.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>

#include "absl/random/random.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "db/errors.h"
#include "db/status_macros.h"
#include "server/api/call_metadata.h"
#include "server/api/decision_rules.h"
#include "server/api/proto_convert.h"
#include "server/ops/log_format.h"
#include "server/status_conversion.h"
#include "server/watch/watch_reactor.h"

namespace approvald::server {

namespace v1 = approvals::v1;

// What a call gets once SIGTERM has begun: retryable, on another replica or after the restart.
absl::Status ApprovalServiceImpl::ShuttingDown() {
  return absl::UnavailableError("approvald is shutting down; retry (another replica can serve)");
}

ApprovalServiceImpl::ApprovalServiceImpl(db::ApprovalStore& store,
                                         std::shared_ptr<const handlers::HandlerRegistry> registry,
                                         std::shared_ptr<const TokenStore> tokens,
                                         PageTokenCodec page_tokens, Executor& executor,
                                         ServiceOptions options)
    : store_(store),
      registry_(std::move(registry)),
      tokens_(std::move(tokens)),
      page_tokens_(std::move(page_tokens)),
      executor_(executor),
      options_(std::move(options)) {}

void ApprovalServiceImpl::SetTokens(std::shared_ptr<const TokenStore> tokens) {
  std::lock_guard<std::mutex> lock(mu_);
  tokens_ = std::move(tokens);
}

void ApprovalServiceImpl::SetRegistry(std::shared_ptr<const handlers::HandlerRegistry> registry) {
  std::lock_guard<std::mutex> lock(mu_);
  registry_ = std::move(registry);
}

std::shared_ptr<const handlers::HandlerRegistry> ApprovalServiceImpl::registry() const {
  std::lock_guard<std::mutex> lock(mu_);
  return registry_;
}

absl::StatusOr<Principal> ApprovalServiceImpl::Authenticate(
    grpc::CallbackServerContext* ctx) const {
  std::shared_ptr<const TokenStore> tokens;
  {
    std::lock_guard<std::mutex> lock(mu_);
    tokens = tokens_;
  }
  if (!tokens) return absl::UnauthenticatedError("no tokens are configured");
  const auto& md = ctx->client_metadata();
  if (options_.principal_from_cert) {
    std::string identity = CertificateIdentity(*ctx);
    if (identity.empty()) identity = GatewayCertificateIdentity(md);
    if (!identity.empty()) return tokens->AuthenticateCertificate(identity);
  }
  auto it = md.find("authorization");
  absl::string_view value;
  if (it != md.end()) value = absl::string_view(it->second.data(), it->second.size());
  return tokens->Authenticate(value);
}

std::string ApprovalServiceImpl::CertificateIdentity(const grpc::CallbackServerContext& ctx) {
  std::shared_ptr<const grpc::AuthContext> auth = ctx.auth_context();
  if (!auth || !auth->IsPeerAuthenticated()) return "";
  for (const char* property :
       {GRPC_PEER_URI_PROPERTY_NAME, GRPC_PEER_DNS_PROPERTY_NAME, GRPC_X509_CN_PROPERTY_NAME}) {
    std::vector<grpc::string_ref> values = auth->FindPropertyValues(property);
    if (!values.empty()) return std::string(values.front().data(), values.front().size());
  }
  return "";
}

std::string ApprovalServiceImpl::GatewayCertificateIdentity(
    const std::multimap<grpc::string_ref, grpc::string_ref>& md) const {
  // Only the HTTP gateway, in this process, knows the secret; a client that sends this
  // metadata over the network without it is ignored.
  const std::string& secret = options_.gateway_cert_secret;
  auto it = md.find(kGatewayCertKey);
  if (secret.empty() || it == md.end()) return "";
  const absl::string_view value(it->second.data(), it->second.size());
  if (value.size() <= secret.size() + 1 || value[secret.size()] != ' ' ||
      CRYPTO_memcmp(value.data(), secret.data(), secret.size()) != 0) {
    return "";
  }
  return std::string(value.substr(secret.size() + 1));
}

std::string ApprovalServiceImpl::RequestId(grpc::CallbackServerContext* ctx) {
  // The caller's x-request-id if it is a sane one, else a fresh id; sent back either way.
  const auto& md = ctx->client_metadata();
  std::string id;
  if (auto it = md.find("x-request-id"); it != md.end() && it->second.size() <= 128) {
    id.assign(it->second.data(), it->second.size());
    for (char c : id) {
      if (c < 0x21 || c > 0x7e) {
        id.clear();
        break;
      }
    }
  }
  if (id.empty()) {
    absl::BitGen gen;
    id = absl::StrFormat("%016x", absl::Uniform<uint64_t>(gen));
  }
  ctx->AddInitialMetadata("x-request-id", id);
  return id;
}

grpc::ServerUnaryReactor* ApprovalServiceImpl::Dispatch(
    grpc::CallbackServerContext* ctx, absl::string_view method,
    const absl::StatusOr<Principal>& principal, absl::Status precheck,
    absl::string_view approval_id, const v1::Approval* result, Work work,
    grpc::ServerUnaryReactor* reactor, const Start& start) {
  if (reactor == nullptr) reactor = ctx->DefaultReactor();
  in_flight_.fetch_add(1);
  CallInfo call = StartCall(ctx, method, principal);
  call.approval_id = std::string(approval_id);
  call.result = result;
  if (!principal.ok()) precheck = principal.status();
  if (draining_) precheck = ShuttingDown();
  if (!precheck.ok()) {
    Finish(reactor, call, precheck);
    return reactor;
  }
  absl::Time deadline = call.start + options_.default_deadline;
  if (ctx->deadline() != std::chrono::system_clock::time_point::max()) {
    deadline = std::min(deadline, absl::FromChrono(ctx->deadline()));
  }
  auto admitted =
      std::make_shared<const Admitted>(Admitted{ctx, reactor, std::move(call), deadline});
  if (start && start(admitted)) return reactor;
  RunBlocking(*admitted, std::move(work));
  return reactor;
}

void ApprovalServiceImpl::RunBlocking(const Admitted& a, Work work) {
  const bool queued = executor_.TrySubmit([this, a, work = std::move(work)] {
    absl::Status st;
    if (a.ctx->IsCancelled()) {
      st = absl::CancelledError("the call was cancelled before it ran");
    } else if (absl::Now() >= a.deadline) {
      st = absl::DeadlineExceededError("the deadline passed while the call was queued");
    } else {
      st = work(a.deadline);
    }
    Finish(a.reactor, a.call, st);
  });
  if (!queued) {
    Finish(a.reactor, a.call,
           draining_ ? ShuttingDown()
                     : absl::ResourceExhaustedError(
                           "approvald is overloaded (work queue full); retry later"));
  }
}

ApprovalServiceImpl::CallInfo ApprovalServiceImpl::StartCall(
    grpc::CallbackServerContext* ctx, absl::string_view method,
    const absl::StatusOr<Principal>& principal) {
  CallInfo call;
  call.start = absl::Now();
  call.method = std::string(method);
  if (principal.ok()) call.principal = principal->name;
  call.request_id = RequestId(ctx);  // also sent back in the initial metadata
  return call;
}

void ApprovalServiceImpl::Finish(grpc::ServerUnaryReactor* reactor, const CallInfo& call,
                                 const absl::Status& status) {
  RecordRpc(call, status);
  reactor->Finish(ToGrpcStatus(status));
  in_flight_.fetch_sub(1);
}

void ApprovalServiceImpl::PokeEventHub() const {
  if (options_.hub != nullptr) options_.hub->Poke();
}

bool ApprovalServiceImpl::WaitIdle(absl::Time deadline) const {
  while (in_flight_.load() > 0) {
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(absl::Milliseconds(5));
  }
  return true;
}

void ApprovalServiceImpl::RecordRpc(const CallInfo& call, const absl::Status& status,
                                    absl::string_view extra) const {
  const absl::Duration took = absl::Now() - call.start;
  if (options_.logger) {
    const v1::ErrorReason reason = db::GetReason(status);
    // An action's failure can quote the approval's data (a handler's message, or PostgreSQL's
    // "invalid input syntax ... \"<value>\""): logged only with --log-action-data. The caller
    // and the approval's execution_error still have it.
    std::string message = EscapeForLog(status.message());
    if (reason == v1::EXECUTION_FAILED && !options_.log_action_data) {
      message = "action failed (the approval's execution_error has the details)";
    }
    // The request's id is unchecked when validation failed: escaped and cut short.
    std::string approval_id = call.result != nullptr && !call.result->id().empty()
                                  ? call.result->id()
                                  : EscapeForLog(absl::string_view(call.approval_id).substr(0, 64));
    options_.logger->info(
        "rpc method={} code={} reason={} ms={:.2f} principal={} approval_id={} request_id={}{}{}{}",
        call.method, absl::StatusCodeToString(status.code()),
        reason == v1::ERROR_REASON_UNSPECIFIED ? "-" : v1::ErrorReason_Name(reason),
        absl::ToDoubleMilliseconds(took), call.principal.empty() ? "-" : call.principal,
        approval_id.empty() ? "-" : approval_id, call.request_id, std::string(extra),
        message.empty() ? "" : " message=", message);
  }
  if (options_.metrics) {
    options_.metrics->RecordRpc(call.method, absl::StatusCodeToString(status.code()),
                                absl::ToDoubleSeconds(took));
  }
}

absl::Status ApprovalServiceImpl::PrecheckCreate(const Principal& p,
                                                 const handlers::ActionType* type,
                                                 const v1::CreateApprovalRequest& req,
                                                 std::string* action_data_json) const {
  RETURN_IF_ERROR(ValidateCreate(req, options_.limits, action_data_json));
  if (type == nullptr) {
    return db::FieldError("action_type",
                          absl::StrCat("unknown action type \"", req.action_type(), "\""),
                          v1::UNKNOWN_ACTION_TYPE);
  }
  RETURN_IF_ERROR(handlers::MayCreate(*type, p));
  const absl::Duration max_ttl = handlers::EffectiveTtl(*type, PolicyDefaults()).max_ttl;
  if (req.has_ttl() && FromDuration(req.ttl()) > max_ttl) {
    return db::FieldError("ttl", absl::StrCat("must be at most the maximum ttl of ", type->name,
                                              " (", absl::FormatDuration(max_ttl), ")"));
  }
  RETURN_IF_ERROR(handlers::ValidateParameters(*type, req.action_data()));
  absl::Status valid = type->handler->Validate(req.action_data());
  if (!valid.ok() && !db::GetErrorInfo(valid)) {
    return db::FieldError("action_data", valid.message(), v1::INVALID_ACTION_DATA);
  }
  return valid;
}

grpc::ServerUnaryReactor* ApprovalServiceImpl::CreateApproval(grpc::CallbackServerContext* ctx,
                                                              const v1::CreateApprovalRequest* req,
                                                              v1::Approval* resp) {
  absl::StatusOr<Principal> principal = Authenticate(ctx);
  std::shared_ptr<const handlers::HandlerRegistry> registry = this->registry();
  const handlers::ActionType* type = registry->Find(req->action_type());
  std::string json;  // converted once, while validating
  absl::Status precheck =
      principal.ok() ? PrecheckCreate(*principal, type, *req, &json) : absl::OkStatus();
  std::shared_ptr<db::CreateInput> in;
  if (precheck.ok() && principal.ok()) {
    in =
        std::make_shared<db::CreateInput>(CreateInputFor(*principal, *type, *req, std::move(json)));
  }
  // The registry is held until the call ends: the input was made from one of its types.
  Work work = [this, in, resp, registry](absl::Time deadline) {
    in->deadline = deadline;
    return CreateWork(*in, resp);
  };
  return Dispatch(ctx, "CreateApproval", principal, precheck, "", resp, work, nullptr,
                  [this, in, resp, work](std::shared_ptr<const Admitted> call) {
                    in->deadline = call->deadline;
                    return StartCreate(in, resp, std::move(call), work);
                  });
}

db::CreateInput ApprovalServiceImpl::CreateInputFor(const Principal& p,
                                                    const handlers::ActionType& type,
                                                    const v1::CreateApprovalRequest& req,
                                                    std::string action_data_json) const {
  db::CreateInput in;
  in.action_type = req.action_type();
  in.action_data_json = std::move(action_data_json);
  in.summary = req.summary();
  in.requested_by = p.name;
  if (!req.idempotency_key().empty()) in.idempotency_key = req.idempotency_key();
  if (req.has_expire_time()) in.expire_time = FromTimestamp(req.expire_time());
  const handlers::TtlBounds ttl = handlers::EffectiveTtl(type, PolicyDefaults());
  in.max_ttl = ttl.max_ttl;
  in.ttl = req.has_ttl() ? FromDuration(req.ttl()) : ttl.default_ttl;
  return in;
}

absl::Status ApprovalServiceImpl::CreateWork(const db::CreateInput& in, v1::Approval* resp) {
  ASSIGN_OR_RETURN(db::CreateResult created, store_.Create(in));
  return Created(in, created, resp);
}

grpc::ServerUnaryReactor* ApprovalServiceImpl::GetApproval(grpc::CallbackServerContext* ctx,
                                                           const v1::GetApprovalRequest* req,
                                                           v1::Approval* resp) {
  return Dispatch(ctx, "GetApproval", Authenticate(ctx), ValidateGet(*req), req->id(), resp,
                  [this, req, resp](absl::Time deadline) -> absl::Status {
                    ASSIGN_OR_RETURN(db::ApprovalRecord a, store_.Get(req->id(), deadline));
                    return ToProto(a, resp);
                  });
}

absl::Status ApprovalServiceImpl::DecideWork(const Principal& p, db::DecideInput in,
                                             v1::Approval* resp) {
  in.actor = p.name;
  const std::shared_ptr<const db::DecisionRules> rules = RulesFor(p, in.decision);
  ASSIGN_OR_RETURN(db::ApprovalRecord decided, store_.Decide(in, *rules));
  return ToProto(decided, resp);
}

namespace {

template <typename Req>
db::DecideInput DecideInputFrom(db::Decision decision, const Req& req, std::string reason,
                                int64_t expected_version, absl::Time deadline) {
  db::DecideInput in;
  in.decision = decision;
  in.id = absl::AsciiStrToLower(req.id());
  in.expected_version = expected_version;
  in.reason = std::move(reason);
  if (!req.request_id().empty()) in.request_id = req.request_id();
  in.deadline = deadline;
  return in;
}

}  // namespace

template <typename Req>
grpc::ServerUnaryReactor* ApprovalServiceImpl::DecideCall(grpc::CallbackServerContext* ctx,
                                                          absl::string_view method,
                                                          absl::Status valid, db::Decision decision,
                                                          const Req* req, const std::string* text,
                                                          v1::Approval* resp) {
  absl::StatusOr<Principal> principal = Authenticate(ctx);
  Work work = [this, req, resp, decision, text,
               p = principal.ok() ? *principal : Principal()](absl::Time d) {
    return DecideWork(p, DecideInputFrom(decision, *req, *text, req->expected_version(), d), resp);
  };
  return Dispatch(
      ctx, method, principal, std::move(valid), req->id(), resp, work, nullptr,
      [this, req, resp, decision, text, work,
       p = principal.ok() ? *principal : Principal()](std::shared_ptr<const Admitted> call) {
        const absl::Time d = call->deadline;
        return StartDecide(p, DecideInputFrom(decision, *req, *text, req->expected_version(), d),
                           resp, std::move(call), work);
      });
}

grpc::ServerUnaryReactor* ApprovalServiceImpl::Approve(grpc::CallbackServerContext* ctx,
                                                       const v1::ApproveRequest* req,
                                                       v1::Approval* resp) {
  return DecideCall(ctx, "Approve", ValidateApprove(*req, options_.limits), db::Decision::kApprove,
                    req, &req->comment(), resp);
}

grpc::ServerUnaryReactor* ApprovalServiceImpl::Reject(grpc::CallbackServerContext* ctx,
                                                      const v1::RejectRequest* req,
                                                      v1::Approval* resp) {
  return DecideCall(ctx, "Reject", ValidateReject(*req, options_.limits), db::Decision::kReject,
                    req, &req->reason(), resp);
}

grpc::ServerUnaryReactor* ApprovalServiceImpl::CancelApproval(grpc::CallbackServerContext* ctx,
                                                              const v1::CancelApprovalRequest* req,
                                                              v1::Approval* resp) {
  return DecideCall(ctx, "CancelApproval", ValidateCancel(*req, options_.limits),
                    db::Decision::kCancel, req, &req->reason(), resp);
}

}  // namespace approvald::server
