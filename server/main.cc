// approvald: the daemon. `approvald [flags]` serves; `approvald migrate [flags]` only migrates.

#include <signal.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <iostream>
#include <string>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "db/migrations.h"
#include "db/pg/migrator.h"
#include "handlers/action_config.h"
#include "handlers/noop_handler.h"
#include "server/approval_server.h"
#include "server/ops/log_format.h"
#include "server/ops/log_sink.h"

#ifdef APPROVALD_JEMALLOC
// jemalloc's options, read at its start: a background thread returns pages that have been free
// for a second to the system, so a burst's memory goes back without waiting for later calls.
extern "C" {
const char* malloc_conf = "background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0";
}
#endif

// The flags that set a ServerConfig field default to that field's own default, so that the
// daemon and ServerConfig (tests, embedders) cannot drift apart.
static const approvald::server::ServerConfig kServerDefaults;

ABSL_FLAG(std::string, listen, kServerDefaults.listen, "gRPC listen address (host:port)");
ABSL_FLAG(std::string, dsn, "", "libpq connection string; empty uses libpq's PG* variables");
ABSL_FLAG(std::string, db_schema, approvald::db::pg::kDefaultSchema,
          "the PostgreSQL schema that holds approvald's tables and functions");
ABSL_FLAG(int, pool_size, kServerDefaults.pool_size,
          "database connections (and worker threads) for the calls that wait on the database "
          "(reads, decisions that run a handler, executions); creates and decisions at once go "
          "through the --commit-batches senders");
ABSL_FLAG(int, commit_batches, kServerDefaults.commit_batches,
          "group commit: sender threads, each on a database connection of its own, that send "
          "creates and decisions at once in batches (one transaction and one commit per "
          "batch); 0 runs each such call alone on a worker thread");
ABSL_FLAG(int, max_queue, static_cast<int>(kServerDefaults.max_queue),
          "queued calls beyond which calls get RESOURCE_EXHAUSTED");
ABSL_FLAG(std::string, tokens, "",
          "tokens file: `<sha256-hex-of-token> <principal> <roles>` lines");
ABSL_FLAG(std::string, config, "",
          "YAML file of action types (see deploy/approvald.yaml); without it only `noop` exists");
ABSL_FLAG(bool, migrate, false, "apply database migrations before serving");
ABSL_FLAG(std::string, log_level, "info", "trace, debug, info, warn, error, critical or off");
ABSL_FLAG(
    absl::Duration, log_flush_interval, absl::Milliseconds(100),
    "longest an info or debug line waits before it is written (lines go out in batches; warnings "
    "and errors at once); 0: every line at once. A terminal gets every line at once");
ABSL_FLAG(std::string, log_format, "text", "text, or json (one JSON object per line, UTC times)");
ABSL_FLAG(absl::Duration, default_ttl, absl::Hours(24), "expiry of approvals created without one");
ABSL_FLAG(absl::Duration, max_ttl, absl::Hours(24 * 30), "longest allowed expiry");
ABSL_FLAG(absl::Duration, shutdown_grace, absl::Seconds(10),
          "on SIGTERM, how long in-flight calls may take to finish");
ABSL_FLAG(absl::Duration, expiry_interval, kServerDefaults.expiry_interval,
          "how often pending approvals past their expiry become EXPIRED (0 turns it off)");
ABSL_FLAG(absl::Duration, event_poll_interval, kServerDefaults.event_poll_interval,
          "while streams are open, how often the event listener reads the log for events written "
          "through other replicas (1ms to 10s)");
ABSL_FLAG(int, watch_buffer, 1024,
          "events a WatchApprovals stream may fall behind before it ends with RESOURCE_EXHAUSTED");
ABSL_FLAG(int, watch_buffer_mib, 16,
          "MiB of events a WatchApprovals stream may fall behind (in memory) before it ends with "
          "RESOURCE_EXHAUSTED");
ABSL_FLAG(int, memory_budget_mib,
          static_cast<int>(kServerDefaults.memory_budget_bytes / (1024 * 1024)),
          "MiB that replaying watch streams and list pages may hold in all; beyond it they get "
          "RESOURCE_EXHAUSTED");
ABSL_FLAG(std::string, tls_cert, "", "PEM server certificate: serve TLS (with --tls-key)");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls-cert");
ABSL_FLAG(std::string, tls_client_ca, "",
          "PEM CA bundle: require client certificates signed by it (mTLS)");
ABSL_FLAG(bool, principal_from_cert, false,
          "with --tls-client-ca: the client certificate's SAN URI or DNS name (else CN) is the "
          "principal; its roles come from `cert <identity> <roles>` lines in the tokens file");
ABSL_FLAG(bool, allow_insecure, false,
          "allow plaintext on a non-loopback address (e.g. behind a TLS-terminating proxy)");
ABSL_FLAG(std::string, metrics_addr, "",
          "host:port for Prometheus metrics over HTTP at /metrics (empty: off)");
ABSL_FLAG(bool, log_action_data, false,
          "log the action_data of each created approval (off: it may hold personal data)");
ABSL_FLAG(std::string, health_listen, "",
          "host:port of an extra plaintext listener serving only the health service, for probes "
          "that cannot speak TLS (e.g. Kubernetes grpc probes); empty: off");
ABSL_FLAG(std::string, http_listen, "",
          "host:port of the HTTP/JSON gateway: the API as JSON on /v1/... and the watch stream "
          "as Server-Sent Events, with the same tokens and TLS as gRPC (empty: off)");
ABSL_FLAG(int, max_message_bytes, kServerDefaults.max_message_bytes,
          "largest accepted request message");

namespace {

using approvald::server::ApprovalServer;

int Fail(const absl::Status& st) {
  spdlog::error("{}", st.ToString());
  return 1;
}

int RunMigrate(const std::string& dsn, const std::string& schema) {
  auto conn = approvald::db::pg::PgConnection::Connect(dsn, schema);
  if (!conn.ok()) return Fail(conn.status());
  auto applied = approvald::db::pg::Migrate(**conn, approvald::db::Migrations());
  if (!applied.ok()) return Fail(applied.status());
  auto version = approvald::db::pg::SchemaVersion(**conn);
  spdlog::info("migrations applied: {}; schema version {}", *applied, version.ok() ? *version : -1);
  return 0;
}

// The action types: from --config, or just `noop`.
absl::StatusOr<std::shared_ptr<approvald::handlers::HandlerRegistry>> LoadActionTypes() {
  const std::string path = absl::GetFlag(FLAGS_config);
  if (!path.empty()) return approvald::handlers::LoadActionConfig(path);
  auto registry = std::make_shared<approvald::handlers::HandlerRegistry>();
  absl::Status st =
      registry->Register("noop", std::make_shared<approvald::handlers::NoopHandler>());
  if (!st.ok()) return st;
  return registry;
}

int CheckConfig(const std::string& path) {
  auto registry = approvald::handlers::LoadActionConfig(path);
  if (!registry.ok()) {
    std::cerr << registry.status().message() << "\n";
    return 1;
  }
  std::cout << path << ": OK, " << (*registry)->All().size() << " action types, "
            << (*registry)->webhooks().size() << " webhook subscriptions\n";
  return 0;
}

// SIGHUP: reload the tokens and the action types; a broken file keeps the old one.
void Reload(ApprovalServer& server, const std::string& tokens_path) {
  auto tokens = approvald::server::TokenStore::Load(tokens_path);
  if (tokens.ok()) {
    const size_t n = tokens->size();
    server.service().SetTokens(
        std::make_shared<const approvald::server::TokenStore>(std::move(*tokens)));
    spdlog::info("SIGHUP: reloaded {} tokens", n);
  } else {
    spdlog::error("SIGHUP: keeping the old tokens: {}",
                  approvald::server::EscapeForLog(tokens.status().message()));
  }
  if (absl::GetFlag(FLAGS_config).empty()) return;
  auto registry = LoadActionTypes();
  absl::Status st = registry.ok() ? server.SetActionTypes(*registry) : registry.status();
  if (st.ok()) {
    spdlog::info("SIGHUP: reloaded {} action types and {} webhook subscriptions",
                 (*registry)->All().size(), (*registry)->webhooks().size());
  } else {
    spdlog::error("SIGHUP: keeping the old action types: {}",
                  approvald::server::EscapeForLog(st.message()));
  }
}

int Serve() {
  const std::string tokens_path = absl::GetFlag(FLAGS_tokens);
  if (tokens_path.empty()) {
    return Fail(absl::InvalidArgumentError(
        "--tokens is required (create entries with `approvalctl token new --principal NAME`)"));
  }
  auto tokens = approvald::server::TokenStore::Load(tokens_path);
  if (!tokens.ok()) return Fail(tokens.status());

  auto registry = LoadActionTypes();
  if (!registry.ok()) return Fail(registry.status());

  approvald::server::ServerConfig config;
  config.listen = absl::GetFlag(FLAGS_listen);
  config.dsn = absl::GetFlag(FLAGS_dsn);
  config.db_schema = absl::GetFlag(FLAGS_db_schema);
  config.pool_size = std::max(1, absl::GetFlag(FLAGS_pool_size));
  config.max_queue = static_cast<size_t>(std::max(1, absl::GetFlag(FLAGS_max_queue)));
  config.commit_batches = std::max(0, absl::GetFlag(FLAGS_commit_batches));
  config.max_message_bytes = absl::GetFlag(FLAGS_max_message_bytes);
  config.tokens = std::make_shared<const approvald::server::TokenStore>(std::move(*tokens));
  config.service.default_ttl = absl::GetFlag(FLAGS_default_ttl);
  config.service.limits.max_ttl = absl::GetFlag(FLAGS_max_ttl);
  config.service.logger = spdlog::default_logger();
  config.service.watch_buffer = static_cast<size_t>(std::max(1, absl::GetFlag(FLAGS_watch_buffer)));
  if (absl::GetFlag(FLAGS_watch_buffer_mib) < 1 || absl::GetFlag(FLAGS_memory_budget_mib) < 16) {
    return Fail(absl::InvalidArgumentError(
        "--watch-buffer-mib must be at least 1 and --memory-budget-mib at least 16"));
  }
  config.service.watch_buffer_bytes =
      static_cast<size_t>(absl::GetFlag(FLAGS_watch_buffer_mib)) * 1024 * 1024;
  config.memory_budget_bytes =
      static_cast<size_t>(absl::GetFlag(FLAGS_memory_budget_mib)) * 1024 * 1024;
  config.expiry_interval = absl::GetFlag(FLAGS_expiry_interval);
  config.event_poll_interval = absl::GetFlag(FLAGS_event_poll_interval);
  if (config.event_poll_interval < absl::Milliseconds(1) ||
      config.event_poll_interval > absl::Seconds(10)) {
    return Fail(absl::InvalidArgumentError("--event-poll-interval must be between 1ms and 10s"));
  }
  config.metrics_addr = absl::GetFlag(FLAGS_metrics_addr);
  config.health_listen = absl::GetFlag(FLAGS_health_listen);
  config.http_listen = absl::GetFlag(FLAGS_http_listen);
  config.service.log_action_data = absl::GetFlag(FLAGS_log_action_data);
  config.tls.cert_file = absl::GetFlag(FLAGS_tls_cert);
  config.tls.key_file = absl::GetFlag(FLAGS_tls_key);
  config.tls.client_ca_file = absl::GetFlag(FLAGS_tls_client_ca);
  config.tls.allow_insecure = absl::GetFlag(FLAGS_allow_insecure);
  config.service.principal_from_cert = absl::GetFlag(FLAGS_principal_from_cert);
  if (config.service.principal_from_cert && config.tls.client_ca_file.empty()) {
    return Fail(absl::InvalidArgumentError("--principal-from-cert needs --tls-client-ca"));
  }
  if (config.service.default_ttl > config.service.limits.max_ttl) {
    return Fail(absl::InvalidArgumentError("--default-ttl must not exceed --max-ttl"));
  }

  // Block the signals before gRPC starts its threads, so that only sigwait sees them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  if (absl::GetFlag(FLAGS_migrate)) {
    if (int rc = RunMigrate(config.dsn, config.db_schema); rc != 0) return rc;
  }
  auto server = ApprovalServer::Start(config, *registry);
  if (!server.ok()) return Fail(server.status());
  spdlog::info("approvald listening on {} (port {}), pool {}, {} tokens", config.listen,
               (*server)->port(), config.pool_size, config.tokens->size());
  if ((*server)->health_port() > 0) {
    spdlog::info("health-only listener on {} (health port {})", config.health_listen,
                 (*server)->health_port());
  }
  if ((*server)->http_port() > 0) {
    spdlog::info("HTTP/JSON on {}://{}/v1/ (http port {})",
                 config.tls.cert_file.empty() ? "http" : "https", config.http_listen,
                 (*server)->http_port());
  }
  if ((*server)->metrics_port() > 0) {
    spdlog::info("metrics on http://{}/metrics (metrics port {})", config.metrics_addr,
                 (*server)->metrics_port());
  }
  spdlog::default_logger()->flush();  // whoever waits for "listening" sees it at once

  for (;;) {
    int sig = 0;
    sigwait(&signals, &sig);
    if (sig == SIGHUP) {
      Reload(**server, tokens_path);
      spdlog::default_logger()->flush();
      continue;
    }
    spdlog::info("signal {}: shutting down", sig);
    break;
  }
  (*server)->Shutdown(absl::GetFlag(FLAGS_shutdown_grace));
  spdlog::info("approvald stopped");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // Debian's Abseil checks every Mutex acquisition for lock-order cycles (a debugging aid that
  // costs a graph lookup per lock); approvald's locks are never nested in two orders.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  absl::SetProgramUsageMessage(
      "approvald [flags]            serve ApprovalService\n"
      "approvald migrate [--dsn=]   apply database migrations and exit\n"
      "approvald check-config FILE  validate an action-type config file (exit 0 or 1)");
  // Flags are documented with dashes (--pool-size); Abseil spells them with underscores.
  std::vector<std::string> spelled(argv, argv + argc);
  for (std::string& arg : spelled) {
    if (arg.rfind("--", 0) != 0) continue;
    const size_t end = std::min(arg.find('='), arg.size());
    std::replace(arg.begin() + 2, arg.begin() + static_cast<std::ptrdiff_t>(end), '-', '_');
  }
  std::vector<char*> raw;
  for (std::string& arg : spelled) raw.push_back(arg.data());
  std::vector<char*> args = absl::ParseCommandLine(argc, raw.data());
  const absl::Duration flush_interval = absl::GetFlag(FLAGS_log_flush_interval);
  if (flush_interval < absl::ZeroDuration() || flush_interval > absl::Seconds(10)) {
    std::cerr << "--log-flush-interval must be between 0 and 10s\n";
    return 1;
  }
  if (isatty(STDERR_FILENO)) {
    spdlog::set_default_logger(spdlog::stderr_color_mt("approvald"));
  } else {
    // A file, a pipe or the journal: lines in batches, one write(2) each (see BatchingFdSink).
    spdlog::set_default_logger(std::make_shared<spdlog::logger>(
        "approvald",
        std::make_shared<approvald::server::BatchingFdSink>(STDERR_FILENO, flush_interval)));
  }
  // Whatever path main takes from here, the lines still waiting are written before it returns.
  absl::Cleanup write_log = [] { spdlog::default_logger()->flush(); };
  // spdlog reads a name it does not know as "off": a typo must not silence the daemon.
  const std::string level = absl::AsciiStrToLower(absl::GetFlag(FLAGS_log_level));
  if (level != "off" && spdlog::level::from_str(level) == spdlog::level::off) {
    std::cerr << "--log-level must be trace, debug, info, warn, error, critical or off (got \""
              << absl::GetFlag(FLAGS_log_level) << "\")\n";
    return 2;
  }
  spdlog::set_level(spdlog::level::from_str(level));
  if (absl::GetFlag(FLAGS_log_format) == "json") {
    approvald::server::UseJsonLogFormat(*spdlog::default_logger());
  } else if (absl::GetFlag(FLAGS_log_format) != "text") {
    std::cerr << "--log-format must be text or json\n";
    return 2;
  }
  if (const std::string schema = absl::GetFlag(FLAGS_db_schema);
      !approvald::db::pg::IsValidSchemaName(schema)) {
    std::cerr << "--db-schema must be a lower-case identifier ([a-z_][a-z0-9_]*, at most 63 "
                 "bytes), not public and not pg_*: \""
              << schema << "\"\n";
    return 2;
  }
  if (args.size() > 1) {
    const std::string command = args[1];
    if (command == "migrate" && args.size() == 2) {
      return RunMigrate(absl::GetFlag(FLAGS_dsn), absl::GetFlag(FLAGS_db_schema));
    }
    if (command == "check-config" && args.size() == 3) return CheckConfig(args[2]);
    std::cerr << "unknown command: " << command << "\n" << absl::ProgramUsageMessage() << "\n";
    return 2;
  }
  return Serve();
}
