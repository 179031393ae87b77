#include "server/approval_server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>
#include <grpcpp/server_builder.h>
#include <spdlog/spdlog.h>
#include <sys/random.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "db/migrations.h"
#include "db/pg/migrator.h"
#include "db/pg/pg_events.h"
#include "db/status_macros.h"
#include "server/webhooks/http_post.h"

namespace approvald::server {

namespace {

constexpr char kServiceName[] = "approvals.v1.ApprovalService";
constexpr char kExecutionServiceName[] = "approvals.v1.ExecutionService";
constexpr char kWebhookServiceName[] = "approvals.v1.WebhookService";
constexpr unsigned int kTlsRefreshSeconds = 5;

// Prepares each handler statement once, so that a statement that does not prepare (a typo, a
// missing table) fails start-up or a reload with the action type's name, not a live decision.
absl::Status CheckStatements(db::pg::ConnectionPool& pool,
                             const handlers::HandlerRegistry& registry) {
  ASSIGN_OR_RETURN(db::pg::PoolLease lease, pool.Acquire(absl::Now() + absl::Seconds(30)));
  for (const handlers::ActionType* type : registry.All()) {
    const std::vector<db::Query> statements = type->handler->Statements();
    for (size_t i = 0; i < statements.size(); ++i) {
      if (absl::Status st = lease->Prepare(statements[i]); !st.ok()) {
        return absl::InvalidArgumentError(absl::StrCat("action type ", type->name, ", sql[", i,
                                                       "] does not prepare: ", st.message()));
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadFile(const std::string& path, const char* flag) {
  std::ifstream in(path);
  if (!in) return absl::InvalidArgumentError(absl::StrCat(flag, ": cannot read ", path));
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// 32 random bytes as hex, from OpenSSL's generator.
std::string RandomSecret() {
  // The kernel's CSPRNG (getrandom blocks only until it is seeded at boot). Not OpenSSL's:
  // its first use loads its configuration and providers, megabytes that an idle daemon would
  // otherwise hold from start-up.
  unsigned char bytes[32];
  if (getrandom(bytes, sizeof(bytes), 0) != static_cast<ssize_t>(sizeof(bytes))) {
    std::abort();  // no entropy: nothing is safe
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char b : bytes) {
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 15]);
  }
  return out;
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ServerCredentials(
    const TlsConfig& tls, const std::string& listen) {
  if (tls.cert_file.empty() != tls.key_file.empty()) {
    return absl::InvalidArgumentError("--tls-cert and --tls-key go together");
  }
  if (tls.cert_file.empty()) {
    if (!tls.client_ca_file.empty()) {
      return absl::InvalidArgumentError("--tls-client-ca needs --tls-cert and --tls-key");
    }
    if (!IsLoopbackAddress(listen) && !tls.allow_insecure) {
      return absl::InvalidArgumentError(absl::StrCat(
          "refusing plaintext on ", listen,
          ": serve TLS with --tls-cert/--tls-key, listen on a loopback address, or pass "
          "--allow-insecure (e.g. behind a TLS-terminating proxy)"));
    }
    return grpc::InsecureServerCredentials();
  }
  // Read once here so that a missing or unreadable file stops start-up with a clear error.
  RETURN_IF_ERROR(ReadFile(tls.cert_file, "--tls-cert").status());
  RETURN_IF_ERROR(ReadFile(tls.key_file, "--tls-key").status());
  if (!tls.client_ca_file.empty()) {
    RETURN_IF_ERROR(ReadFile(tls.client_ca_file, "--tls-client-ca").status());
  }
  // The files are watched: a renewed certificate (or CA bundle) is picked up within
  // kTlsRefreshSeconds, with no restart and no dropped connections.
  auto provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
      tls.key_file, tls.cert_file, tls.client_ca_file, kTlsRefreshSeconds);
  grpc::experimental::TlsServerCredentialsOptions options(provider);
  options.watch_identity_key_cert_pairs();
  if (!tls.client_ca_file.empty()) {
    options.watch_root_certs();
    options.set_cert_request_type(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  } else {
    options.set_cert_request_type(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  }
  return grpc::experimental::TlsServerCredentials(options);
}

}  // namespace

bool IsLoopbackAddress(const std::string& listen) {
  std::string host = listen.substr(0, listen.rfind(':'));
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  return host == "localhost" || host == "::1" || absl::StartsWith(host, "127.");
}

absl::Status ApprovalServer::SetActionTypes(
    std::shared_ptr<const handlers::HandlerRegistry> registry) {
  RETURN_IF_ERROR(CheckStatements(*pool_, *registry));
  service_->SetRegistry(registry);
  if (webhook_actions_) webhook_actions_->SetRegistry(registry);
  if (event_delivery_) event_delivery_->Start(registry->webhooks());
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<ApprovalServer>> ApprovalServer::Start(
    ServerConfig config, std::shared_ptr<const handlers::HandlerRegistry> registry) {
  std::unique_ptr<ApprovalServer> s(new ApprovalServer());
  s->config_ = std::move(config);
  s->pool_ = std::make_unique<db::pg::ConnectionPool>(s->config_.dsn, s->config_.pool_size,
                                                      s->config_.db_schema);
  {
    ASSIGN_OR_RETURN(db::pg::PoolLease lease, s->pool_->Acquire(absl::Now() + absl::Seconds(30)));
    RETURN_IF_ERROR(db::pg::CheckSchema(*lease, db::Migrations()));
  }
  RETURN_IF_ERROR(CheckStatements(*s->pool_, *registry));
  s->store_ = std::make_unique<db::pg::PgApprovalStore>(*s->pool_);
  // Every new pooled connection prepares the operator statements of the current action types.
  s->pool_->SetOnConnect([server = s.get()](db::pg::PgConnection& conn) -> absl::Status {
    if (!server->service_) return absl::OkStatus();
    // Best effort: a statement that no longer prepares fails its own action type when used,
    // never every connection.
    const std::shared_ptr<const handlers::HandlerRegistry> registry = server->service_->registry();
    for (const handlers::ActionType* type : registry->All()) {
      for (const db::Query& q : type->handler->Statements()) (void)conn.Prepare(q);
    }
    return absl::OkStatus();
  });
  ASSIGN_OR_RETURN(std::string key, s->store_->GetSetting("page_token_key"));
  s->executor_ = std::make_unique<Executor>(s->config_.pool_size, s->config_.max_queue);
  if (s->config_.commit_batches > 0) {
    // Its senders keep a connection each, besides the pool's. Its queue is bounded as the
    // executor's: beyond it, calls go to the executor, and beyond that they are refused.
    s->pipeline_ = std::make_unique<db::pg::CommitPipeline>(*s->pool_, s->config_.commit_batches,
                                                            s->config_.max_queue);
    s->store_->SetPipeline(s->pipeline_.get());
  }
  s->hub_ =
      std::make_unique<EventHub>(db::pg::PgEventLogConnector(s->config_.dsn, s->config_.db_schema),
                                 s->config_.service.logger, s->config_.event_poll_interval);
  // The listener notices a lost database first: health follows it (NOT_SERVING while down).
  s->hub_->SetOnDatabaseState([server = s.get()](bool up) { server->SetDatabaseUp(up); });
  RETURN_IF_ERROR(s->hub_->Start());
  s->config_.service.hub = s->hub_.get();
  s->config_.service.metrics = &s->metrics_;
  s->budget_ = std::make_unique<MemoryBudget>(s->config_.memory_budget_bytes);
  s->config_.service.budget = s->budget_.get();
  s->metrics_.SetGauges([server = s.get()]() -> std::map<std::string, double> {
    db::pg::ConnectionPool& pool = *server->pool_;
    const db::pg::CommitPipeline* pipeline = server->pipeline_.get();
    return {
        {"approvald_db_pool_max", pool.max_size()},
        {"approvald_db_pool_open", pool.open()},
        {"approvald_db_pool_in_use", pool.open() - pool.idle()},
        {"approvald_db_pool_waiting", pool.waiting()},
        {"approvald_db_transaction_retries_total", static_cast<double>(pool.retries())},
        {"approvald_db_commit_batches_total",
         pipeline != nullptr ? static_cast<double>(pipeline->batches()) : 0},
        {"approvald_db_grouped_statements_total",
         pipeline != nullptr ? static_cast<double>(pipeline->grouped_statements()) : 0},
        {"approvald_db_commit_queue_depth",
         pipeline != nullptr ? static_cast<double>(pipeline->queued()) : 0},
        {"approvald_executor_queue_depth", static_cast<double>(server->executor_->queue_depth())},
        {"approvald_executor_threads", static_cast<double>(server->executor_->threads())},
        {"approvald_watchers", static_cast<double>(server->hub_->sinks())},
        {"approvald_memory_budget_bytes", static_cast<double>(server->budget_->limit())},
        {"approvald_memory_budget_used_bytes", static_cast<double>(server->budget_->used())},
        {"approvald_database_up", server->database_up_.load() ? 1 : 0}};
  });
  if (!s->config_.metrics_addr.empty()) {
    ASSIGN_OR_RETURN(s->metrics_server_,
                     MetricsServer::Start(s->config_.metrics_addr, s->metrics_));
  }
  s->config_.service.gateway_cert_secret = RandomSecret();
  s->service_ = std::make_unique<ApprovalServiceImpl>(
      *s->store_, std::move(registry), s->config_.tokens, PageTokenCodec(std::move(key)),
      *s->executor_, s->config_.service);
  s->execution_store_ = std::make_unique<db::pg::PgExecutionStore>(*s->pool_);
  s->execution_service_ =
      std::make_unique<ExecutionServiceImpl>(*s->service_, *s->execution_store_, s->hub_.get());
  s->webhook_store_ = std::make_unique<db::pg::PgWebhookStore>(*s->pool_);
  s->webhook_service_ =
      std::make_unique<WebhookServiceImpl>(*s->service_, *s->webhook_store_, [server = s.get()] {
        if (server->event_delivery_) server->event_delivery_->Poke();
      });

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  ASSIGN_OR_RETURN(std::shared_ptr<grpc::ServerCredentials> creds,
                   ServerCredentials(s->config_.tls, s->config_.listen));
  builder.AddListeningPort(s->config_.listen, creds, &s->port_);
  builder.SetMaxReceiveMessageSize(s->config_.max_message_bytes);
  // A watch may wait hours for its event: clients may ping every 10 s or more (approvald's
  // Python client does every 30 s), and the server pings a silent connection each minute, so
  // a peer that vanished is found and its stream ended.
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10'000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 60'000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 20'000);
  builder.RegisterService(s->service_.get());
  builder.RegisterService(s->execution_service_.get());
  builder.RegisterService(s->webhook_service_.get());
  {
    std::lock_guard<std::mutex> lock(
        s->health_mu_);  // the listener thread reads server_ for health
    s->server_ = builder.BuildAndStart();
  }
  if (!s->server_ || s->port_ == 0) {
    return absl::InvalidArgumentError(absl::StrCat("cannot listen on ", s->config_.listen));
  }
  s->server_->GetHealthCheckService()->SetServingStatus(kServiceName, true);
  s->server_->GetHealthCheckService()->SetServingStatus(kExecutionServiceName, true);
  s->server_->GetHealthCheckService()->SetServingStatus(kWebhookServiceName, true);
  if (!s->config_.health_listen.empty()) {
    // A second, health-only server: it exposes nothing but SERVING / NOT_SERVING.
    grpc::ServerBuilder health;
    health.AddListeningPort(s->config_.health_listen, grpc::InsecureServerCredentials(),
                            &s->health_port_);
    std::lock_guard<std::mutex> lock(s->health_mu_);
    s->health_server_ = health.BuildAndStart();
    if (!s->health_server_ || s->health_port_ == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("cannot listen on --health-listen ", s->config_.health_listen));
    }
    s->health_server_->GetHealthCheckService()->SetServingStatus(kServiceName, true);
    s->health_server_->GetHealthCheckService()->SetServingStatus(s->database_up_.load());
  }
  if (!s->config_.http_listen.empty()) RETURN_IF_ERROR(s->StartGateway());
  s->StartWebhooks(s->service_->registry());
  if (s->config_.expiry_interval > absl::ZeroDuration()) {
    s->sweeper_ = std::make_unique<ExpirySweeper>(*s->store_, s->config_.expiry_interval,
                                                  s->config_.service.logger);
    // Its EXPIRED events wake this daemon's listener like a decision's (and are counted).
    s->sweeper_->SetOnExpired([metrics = s->config_.service.metrics, hub = s->hub_.get()](
                                  const std::string& type, int n) {
      if (metrics) metrics->RecordDecided(type, "expired", static_cast<uint64_t>(n));
      hub->Poke();
    });
    s->sweeper_->Start();
  }
  return s;
}

absl::Status ApprovalServer::StartGateway() {
  const TlsConfig& tls = config_.tls;
  GatewayOptions options;
  options.addr = config_.http_listen;
  options.max_body = static_cast<size_t>(config_.max_message_bytes);
  options.budget = budget_.get();
  options.cert_secret = config_.service.gateway_cert_secret;
  if (tls.cert_file.empty() && !IsLoopbackAddress(options.addr) && !tls.allow_insecure) {
    return absl::InvalidArgumentError(
        absl::StrCat("refusing plaintext HTTP on ", options.addr,
                     ": serve TLS with --tls-cert/--tls-key, listen on a loopback address, or pass "
                     "--allow-insecure"));
  }
  if (!tls.cert_file.empty()) {
    // Read at start: unlike the gRPC port, a renewed certificate needs a restart here.
    ASSIGN_OR_RETURN(options.cert_pem, ReadFile(tls.cert_file, "--tls-cert"));
    ASSIGN_OR_RETURN(options.key_pem, ReadFile(tls.key_file, "--tls-key"));
    if (!tls.client_ca_file.empty()) {
      ASSIGN_OR_RETURN(options.client_ca_pem, ReadFile(tls.client_ca_file, "--tls-client-ca"));
    }
  }
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);  // the service bounds what it answers
  const google::protobuf::DescriptorPool* pool = google::protobuf::DescriptorPool::generated_pool();
  ASSIGN_OR_RETURN(gateway_, HttpGateway::Start(std::move(options),
                                                {pool->FindServiceByName(kServiceName),
                                                 pool->FindServiceByName(kExecutionServiceName),
                                                 pool->FindServiceByName(kWebhookServiceName)},
                                                server_->InProcessChannel(args)));
  return absl::OkStatus();
}

void ApprovalServer::StartWebhooks(std::shared_ptr<const handlers::HandlerRegistry> registry) {
  // This replica's name in leases: a restart on the same host and port takes its own leases
  // back at once; two running replicas never share it (they cannot bind the same port).
  char host[256] = {0};
  if (gethostname(host, sizeof(host) - 1) != 0) std::snprintf(host, sizeof(host), "localhost");
  const std::string holder = absl::StrCat(host, ":", port_);
  event_delivery_ =
      std::make_unique<EventDelivery>(*webhook_store_, holder, hub_.get(), config_.service.logger);
  event_delivery_->Start(registry->webhooks());
  webhook_actions_ = std::make_unique<WebhookActions>(
      *execution_store_, absl::StrCat("approvald@", holder), hub_.get(), config_.service.logger);
  webhook_actions_->SetRegistry(std::move(registry));
  metrics_.AddText([delivery = event_delivery_.get(), actions = webhook_actions_.get()] {
    return delivery->RenderMetrics() + actions->RenderMetrics();
  });
}

void ApprovalServer::SetDatabaseUp(bool up) {
  database_up_ = up;
  std::lock_guard<std::mutex> lock(health_mu_);
  if (server_ == nullptr || shut_down_) return;
  server_->GetHealthCheckService()->SetServingStatus(up);
  if (health_server_) health_server_->GetHealthCheckService()->SetServingStatus(up);
}

ApprovalServer::~ApprovalServer() { Shutdown(absl::Seconds(5)); }

void ApprovalServer::Shutdown(absl::Duration grace) {
  {
    std::lock_guard<std::mutex> lock(health_mu_);
    if (shut_down_) return;
    shut_down_ = true;
    if (server_) server_->GetHealthCheckService()->SetServingStatus(false);
    if (health_server_) health_server_->GetHealthCheckService()->SetServingStatus(false);
  }
  if (sweeper_) sweeper_->Stop();
  if (metrics_server_) metrics_server_->Stop();
  // Leases released: another replica goes on with the subscriptions at once. An attempt in
  // flight ends first (within its timeout).
  if (event_delivery_) event_delivery_->Stop();
  if (webhook_actions_) webhook_actions_->Stop();
  // New calls answer UNAVAILABLE at once; the calls in flight finish, within the grace.
  const absl::Time deadline = absl::Now() + grace;
  if (service_) service_->StartDraining();
  if (execution_service_) execution_service_->Stop();  // waiting claims answer now
  if (hub_) hub_->Stop();  // ends the live streams, telling each where to resume
  if (service_ && !service_->WaitIdle(deadline) && config_.service.logger) {
    // gRPC's shutdown below cancels what is still running; say so rather than stay silent.
    config_.service.logger->warn("shutdown grace over with calls still running; cancelling them");
  }
  // The HTTP answers of the calls that finished go out through the in-process channel, which
  // works until gRPC's shutdown.
  if (gateway_) gateway_->Stop(std::min(absl::Milliseconds(500), deadline - absl::Now()));
  // Then gRPC's own shutdown, with a short deadline: its answers are on their way, and gRPC
  // would otherwise wait for every client to close its connection, idle ones included.
  if (server_) {
    server_->Shutdown(
        absl::ToChronoTime(std::min(deadline, absl::Now() + absl::Milliseconds(500))));
  }
  // What is queued is sent and answered (a fallback may still go to the executor).
  if (pipeline_) pipeline_->Shutdown();
  if (executor_) executor_->Shutdown();
  if (server_) server_->Wait();
  if (health_server_) health_server_->Shutdown(absl::ToChronoTime(absl::Now()));
}

}  // namespace approvald::server
