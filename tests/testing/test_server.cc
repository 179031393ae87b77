#include "tests/testing/test_server.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <chrono>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "server/auth/token_store.h"
#include "tests/testing/test_handlers.h"

namespace approvald::testing {

std::unique_ptr<TestServer> TestServer::Start(TestServerOptions options) {
  auto ts = std::unique_ptr<TestServer>(new TestServer());
  ts->db_ = TestDatabase::Create();
  if (!ts->db_) return nullptr;
  if (auto conn = ts->db_->Connect(); !conn || !conn->ExecScript(kCreateEffectsTable).ok()) {
    ADD_FAILURE() << "cannot create test_effects";
    return nullptr;
  }
  if (!options.setup_sql.empty()) {
    auto conn = ts->db_->Connect();
    if (absl::Status st = conn->ExecScript(options.setup_sql); !st.ok()) {
      ADD_FAILURE() << "setup_sql: " << st;
      return nullptr;
    }
  }
  std::string tokens;
  std::vector<std::string> names = {"agent", "alice", "bob", "carol"};
  for (int i = 0; i < 64; ++i) names.push_back(absl::StrCat("racer", i));
  for (const auto& n : names) {
    absl::StrAppend(&tokens, server::Sha256Hex("tok-" + n), " ", n, " approver,requester\n");
  }
  absl::StrAppend(&tokens, server::Sha256Hex("tok-viewer"), " viewer\n");
  absl::StrAppend(&tokens, server::Sha256Hex("tok-requester"), " requester requester\n");
  absl::StrAppend(&tokens, server::Sha256Hex("tok-approver"), " approver approver\n");
  auto store = server::TokenStore::Parse(tokens, "test tokens");
  if (!store.ok()) {
    ADD_FAILURE() << store.status();
    return nullptr;
  }
  server::ServerConfig config;
  config.listen = "127.0.0.1:0";
  config.dsn = ts->db_->dsn();
  config.pool_size = options.pool_size;
  config.max_queue = options.max_queue;
  config.service.watch_buffer = options.watch_buffer;
  config.expiry_interval = options.expiry_interval;
  config.event_poll_interval = options.event_poll_interval;
  config.tokens = std::make_shared<const server::TokenStore>(std::move(*store));
  config.service.logger = spdlog::default_logger();
  auto started = server::ApprovalServer::Start(
      config, options.registry ? options.registry : MakeTestRegistry());
  if (!started.ok()) {
    ADD_FAILURE() << started.status();
    return nullptr;
  }
  ts->server_ = std::move(*started);
  return ts;
}

TestServer::~TestServer() {
  if (server_) server_->Shutdown(absl::Seconds(5));
  server_.reset();
}

std::string TestServer::target() const { return absl::StrCat("127.0.0.1:", server_->port()); }

std::shared_ptr<grpc::Channel> TestServer::NewChannel() const {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // a connection of its own
  return grpc::CreateCustomChannel(target(), grpc::InsecureChannelCredentials(), args);
}

std::unique_ptr<client::ApprovalClient> TestServer::Client(const std::string& principal) const {
  // Connected before it is handed out: tests that start many calls at once test the server's
  // decisions, and a connection attempt that fails under load (seen under TSan on 2 cores: the
  // call fails UNAVAILABLE without waiting for a retry) is not what they are about. If it cannot
  // connect in 30 s, the test's first call says so.
  std::shared_ptr<grpc::Channel> channel = NewChannel();
  (void)channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(30));
  return std::make_unique<client::ApprovalClient>(
      std::move(channel), principal.empty() ? "" : "tok-" + principal, absl::Seconds(30));
}

int TestServer::Effects(const std::string& approval_id) const {
  int n = -1;
  (void)absl::SimpleAtoi(
      db_->Scalar(absl::StrCat("SELECT count(*) FROM test_effects WHERE approval_id = '",
                               approval_id, "'")),
      &n);
  return n;
}

}  // namespace approvald::testing
