#pragma once

#include <grpcpp/server.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "db/pg/connection_pool.h"
#include "db/pg/pg_approval_store.h"
#include "db/pg/pg_execution_store.h"
#include "db/pg/pg_webhook_store.h"
#include "handlers/handler_registry.h"
#include "server/api/approval_service.h"
#include "server/api/execution_service.h"
#include "server/api/webhook_service.h"
#include "server/executor.h"
#include "server/expiry_sweeper.h"
#include "server/gateway/http_gateway.h"
#include "server/ops/memory_budget.h"
#include "server/ops/metrics.h"
#include "server/ops/metrics_server.h"
#include "server/watch/event_hub.h"
#include "server/webhooks/event_delivery.h"
#include "server/webhooks/webhook_actions.h"

namespace approvald::server {

/// Transport security. Without a certificate the server speaks plaintext, which it allows only on
/// a loopback address unless `allow_insecure` is set.
struct TlsConfig {
  std::string cert_file;       ///< PEM server certificate (chain)
  std::string key_file;        ///< PEM private key
  std::string client_ca_file;  ///< PEM CA bundle: clients must present a certificate it signed
  bool allow_insecure = false;
};

/// True for 127.0.0.0/8, ::1 and localhost listen addresses.
[[nodiscard]] bool IsLoopbackAddress(const std::string& listen);

struct ServerConfig {
  std::string listen = "127.0.0.1:50051";  ///< port 0 picks a free port
  std::string dsn;                         ///< libpq connection string; empty: PG* variables
  std::string db_schema = db::pg::kDefaultSchema;  ///< where approvald's tables live
  int pool_size = 32;                              ///< database connections = executor workers
  size_t max_queue = 1024;                         ///< queued calls beyond which RESOURCE_EXHAUSTED
  int commit_batches = 2;  ///< CommitPipeline senders (batches in flight); 0: none
  int max_message_bytes = 4 * 1024 * 1024;
  std::shared_ptr<const TokenStore> tokens;
  ServiceOptions service;
  TlsConfig tls;
  std::string metrics_addr;  ///< host:port of the Prometheus /metrics endpoint; empty: off
  /// host:port of a plaintext listener that serves only grpc.health.v1.Health (for probes that
  /// cannot speak TLS, e.g. Kubernetes' grpc probes); empty: off.
  std::string health_listen;
  /// host:port of the HTTP/JSON gateway (same TLS and tokens as gRPC); empty: off.
  std::string http_listen;
  absl::Duration expiry_interval = absl::Seconds(1);  ///< zero: no expiry sweeper
  /// What replaying watch streams and list pages may hold in memory in all (MemoryBudget).
  size_t memory_budget_bytes = 128 * 1024 * 1024;
  /// How often the event listener reads the log while streams are open, for events that other
  /// replicas commit; this daemon's own creates, decisions and expiries wake it at once.
  absl::Duration event_poll_interval = absl::Milliseconds(10);
};

/// The composition of pool, store, executor, service and gRPC server (reflection and health on).
class ApprovalServer {
 public:
  /// Connects to the database, checks its schema version, reads the page-token key and starts
  /// listening. FAILED_PRECONDITION if the schema is not current; UNAVAILABLE if the database
  /// cannot be reached; INVALID_ARGUMENT if the address cannot be bound.
  static absl::StatusOr<std::unique_ptr<ApprovalServer>> Start(
      ServerConfig config, std::shared_ptr<const handlers::HandlerRegistry> registry);
  ~ApprovalServer();

  int port() const { return port_; }

  /// Prepares every handler statement of `registry` on a pooled connection, then makes it the
  /// registry for new calls. On error (naming the action type) the old registry stays.
  absl::Status SetActionTypes(std::shared_ptr<const handlers::HandlerRegistry> registry);
  ApprovalServiceImpl& service() { return *service_; }
  grpc::Server& grpc_server() { return *server_; }
  EventHub& hub() { return *hub_; }
  ExpirySweeper* sweeper() { return sweeper_.get(); }
  Metrics& metrics() { return metrics_; }
  /// The /metrics port, or 0 without --metrics-addr.
  int metrics_port() const { return metrics_server_ ? metrics_server_->port() : 0; }
  /// The --http-listen port, or 0.
  int http_port() const { return gateway_ ? gateway_->port() : 0; }
  /// The --health-listen port, or 0.
  int health_port() const { return health_port_; }

  /// Health NOT_SERVING, stop accepting calls, let in-flight calls finish within `grace`
  /// (then cancel them), drain the executor. Idempotent.
  void Shutdown(absl::Duration grace);

 private:
  ApprovalServer() = default;
  absl::Status StartGateway();
  /// Event delivery and webhook actions, once the port (part of this replica's name) is known.
  void StartWebhooks(std::shared_ptr<const handlers::HandlerRegistry> registry);

  ServerConfig config_;
  std::unique_ptr<db::pg::ConnectionPool> pool_;
  std::unique_ptr<db::pg::PgApprovalStore> store_;
  std::unique_ptr<Executor> executor_;
  std::unique_ptr<ApprovalServiceImpl> service_;
  // After the service and the executor: stopped (its callbacks run) before they are destroyed.
  std::unique_ptr<db::pg::CommitPipeline> pipeline_;  ///< null with --commit-batches 0
  std::unique_ptr<db::pg::PgExecutionStore> execution_store_;
  std::unique_ptr<ExecutionServiceImpl> execution_service_;
  std::unique_ptr<db::pg::PgWebhookStore> webhook_store_;
  std::unique_ptr<WebhookServiceImpl> webhook_service_;
  std::unique_ptr<EventDelivery> event_delivery_;    ///< the config's `webhooks:`
  std::unique_ptr<WebhookActions> webhook_actions_;  ///< `handler: webhook` executions
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<EventHub> hub_;
  std::unique_ptr<ExpirySweeper> sweeper_;
  Metrics metrics_;
  std::unique_ptr<MemoryBudget> budget_;
  std::unique_ptr<MetricsServer> metrics_server_;
  std::unique_ptr<HttpGateway> gateway_;         ///< --http-listen
  std::unique_ptr<grpc::Server> health_server_;  ///< --health-listen
  int health_port_ = 0;
  std::atomic<bool> database_up_{true};
  int port_ = 0;
  // Health follows the database; shutdown makes it NOT_SERVING for good.
  void SetDatabaseUp(bool up);
  std::mutex health_mu_;
  bool shut_down_ ABSL_GUARDED_BY(health_mu_) = false;
};

}  // namespace approvald::server
