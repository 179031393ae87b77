#pragma once

#include <grpcpp/channel.h>

#include <memory>
#include <string>

#include "client/approval_client.h"
#include "server/approval_server.h"
#include "tests/testing/pg_fixture.h"

namespace approvald::testing {

struct TestServerOptions {
  int pool_size = 8;
  size_t max_queue = 1024;
  /// Action types; default: MakeTestRegistry().
  std::shared_ptr<const handlers::HandlerRegistry> registry;
  /// Run on the fresh database before the server starts (e.g. the tables of sql actions).
  std::string setup_sql;
  size_t watch_buffer = 1024;
  absl::Duration expiry_interval = absl::ZeroDuration();  ///< no background sweeper by default
  absl::Duration event_poll_interval = absl::Milliseconds(10);
};

/// The real gRPC server on 127.0.0.1:<free port> against a fresh test database, with a token
/// "tok-<name>" for principals agent, alice, bob, carol, racer0..racer63 (roles approver and
/// requester), `viewer` (no roles), `requester` (requester) and `approver` (approver).
class TestServer {
 public:
  static std::unique_ptr<TestServer> Start(TestServerOptions options);
  static std::unique_ptr<TestServer> Start(int pool_size = 8, size_t max_queue = 1024) {
    TestServerOptions options;
    options.pool_size = pool_size;
    options.max_queue = max_queue;
    return Start(options);
  }
  ~TestServer();

  TestDatabase& db() { return *db_; }
  server::ApprovalServer& server() { return *server_; }
  std::string target() const;
  /// A channel with its own TCP connection.
  std::shared_ptr<grpc::Channel> NewChannel() const;
  /// A client authenticated as `principal` on a new connection, already connected (empty: no
  /// token).
  std::unique_ptr<client::ApprovalClient> Client(const std::string& principal) const;
  /// Rows in test_effects for one approval.
  int Effects(const std::string& approval_id) const;

 private:
  std::unique_ptr<TestDatabase> db_;
  std::unique_ptr<server::ApprovalServer> server_;
};

}  // namespace approvald::testing
