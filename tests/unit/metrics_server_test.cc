#include "server/ops/metrics_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/testing/raw_http.h"

namespace approvald::server {
namespace {

using std::chrono::steady_clock;

using testing::Connect;
using testing::Fetch;
using testing::ReadAll;

class MetricsServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    metrics_.RecordRpc("/approvals.v1.ApprovalService/Approve", "OK", 0.002);
    auto s = MetricsServer::Start("127.0.0.1:0", metrics_);
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = std::move(*s);
    ASSERT_GT(server_->port(), 0);
  }
  std::string Get(const std::string& target) {
    return Fetch(server_->port(), absl::StrCat("GET ", target, " HTTP/1.1\r\nHost: x\r\n\r\n"));
  }

  Metrics metrics_;
  std::unique_ptr<MetricsServer> server_;
};

TEST_F(MetricsServerTest, GetMetricsAnswersTheExpositionText) {
  const std::string out = Get("/metrics");
  EXPECT_TRUE(absl::StartsWith(out, "HTTP/1.1 200 OK\r\n")) << out;
  EXPECT_TRUE(absl::StrContains(out, "Content-Type: text/plain; version=0.0.4")) << out;
  EXPECT_TRUE(absl::StrContains(out, "Connection: close\r\n")) << out;
  const std::string body = out.substr(out.find("\r\n\r\n") + 4);
  EXPECT_EQ(body, metrics_.Render());
  EXPECT_TRUE(absl::StrContains(out, absl::StrCat("Content-Length: ", body.size(), "\r\n")));
  EXPECT_TRUE(absl::StrContains(
      body,
      "approvald_rpcs_total{method=\"/approvals.v1.ApprovalService/Approve\",code=\"OK\"} 1"));
  // A query string (as some scrapers add) and a bare-LF request are fine too.
  EXPECT_TRUE(absl::StartsWith(Get("/metrics?format=text"), "HTTP/1.1 200 OK\r\n"));
  EXPECT_TRUE(
      absl::StartsWith(Fetch(server_->port(), "GET /metrics HTTP/1.0\n\n"), "HTTP/1.1 200 OK\r\n"));
}

TEST_F(MetricsServerTest, HeadSendsTheHeadersOnly) {
  const std::string out = Fetch(server_->port(), "HEAD /metrics HTTP/1.1\r\n\r\n");
  EXPECT_TRUE(absl::StartsWith(out, "HTTP/1.1 200 OK\r\n")) << out;
  EXPECT_TRUE(absl::EndsWith(out, "\r\n\r\n")) << out;
  EXPECT_TRUE(absl::StrContains(out, absl::StrCat("Content-Length: ", metrics_.Render().size())));
}

TEST_F(MetricsServerTest, OtherPathsMethodsAndGarbageGetClearAnswers) {
  EXPECT_TRUE(absl::StartsWith(Get("/"), "HTTP/1.1 404 Not Found\r\n"));
  EXPECT_TRUE(absl::StartsWith(Get("/metricsx"), "HTTP/1.1 404 Not Found\r\n"));
  const std::string post =
      Fetch(server_->port(), "POST /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello");
  EXPECT_TRUE(absl::StartsWith(post, "HTTP/1.1 405 Method Not Allowed\r\n")) << post;
  EXPECT_TRUE(absl::StrContains(post, "Allow: GET, HEAD\r\n")) << post;
  EXPECT_TRUE(
      absl::StartsWith(Fetch(server_->port(), "GET /metrics SPDY/3\r\n\r\n"), "HTTP/1.1 400 "));
  // Lines that are not a request at all are closed (libmicrohttpd answers nothing), or refused.
  for (const std::string& garbage :
       {std::string("hello\r\n\r\n"), std::string("\0\0\0\r\n\r\n", 7)}) {
    const std::string out = Fetch(server_->port(), garbage);
    EXPECT_TRUE(out.empty() || absl::StartsWith(out, "HTTP/1.1 400 ")) << out;
  }
}

TEST_F(MetricsServerTest, AnOversizedRequestHeadIsRefused) {
  const std::string big =
      absl::StrCat("GET /metrics HTTP/1.1\r\nX-Junk: ", std::string(20000, 'a'), "\r\n\r\n");
  EXPECT_TRUE(absl::StartsWith(Fetch(server_->port(), big), "HTTP/1.1 431 ")) << "";
  // A head that never ends is refused as soon as it passes the limit, not at the timeout.
  const auto start = steady_clock::now();
  EXPECT_TRUE(absl::StartsWith(
      Fetch(server_->port(), absl::StrCat("GET /metrics HTTP/1.1\r\n", std::string(9000, 'b'))),
      "HTTP/1.1 431 "));
  EXPECT_LT(steady_clock::now() - start, std::chrono::seconds(3));
}

// Every slot held by a client that never finishes its request: a scrape still gets in, by
// closing the connection that has been sending its head the longest.
TEST_F(MetricsServerTest, SilentClientsDoNotHoldUpAScrape) {
  std::vector<int> silent;
  for (size_t i = 0; i < MetricsServer::kMaxConnections; ++i) {
    const int fd = Connect(server_->port());
    ASSERT_GE(fd, 0);
    if (i % 2 == 0) send(fd, "GET /met", 8, MSG_NOSIGNAL);  // half a request line
    silent.push_back(fd);
  }
  for (int i = 0; i < 5; ++i) {
    EXPECT_TRUE(absl::StartsWith(Get("/metrics"), "HTTP/1.1 200 OK\r\n")) << i;
  }
  // The oldest silent client was closed to make room.
  char c;
  EXPECT_EQ(recv(silent.front(), &c, 1, 0), 0);
  for (int fd : silent) close(fd);
}

// Slowloris: 300 clients that each send one byte of their request head at a time and reconnect
// when closed. Every scrape beside them is answered.
TEST_F(MetricsServerTest, SlowClientsCannotStarveScrapes) {
  constexpr int kSlow = 300;
  std::atomic<bool> stop{false};
  std::thread slow([&] {
    std::vector<int> fds(kSlow, -1);
    const std::string head = "GET /metrics HTTP/1.1\r\nX-Slow: ";
    std::vector<size_t> sent(kSlow, 0);
    while (!stop.load()) {
      for (int i = 0; i < kSlow && !stop.load(); ++i) {
        if (fds[i] < 0) {
          fds[i] = Connect(server_->port());
          sent[i] = 0;
          if (fds[i] < 0) continue;
        }
        const char byte = head[sent[i] % head.size()];
        if (send(fds[i], &byte, 1, MSG_NOSIGNAL | MSG_DONTWAIT) != 1 && errno != EAGAIN) {
          close(fds[i]);  // closed by the server: reconnect
          fds[i] = -1;
        }
        ++sent[i];
      }
      usleep(20'000);
    }
    for (int fd : fds) {
      if (fd >= 0) close(fd);
    }
  });
  usleep(300'000);
  int answered = 0;
  constexpr int kScrapes = 30;
  for (int i = 0; i < kScrapes; ++i) {
    if (absl::StartsWith(Get("/metrics"), "HTTP/1.1 200 OK\r\n")) ++answered;
    usleep(50'000);
  }
  stop = true;
  slow.join();
  EXPECT_EQ(answered, kScrapes);
}

// A client that never finishes its request is closed after kConnectionTimeoutMs (10 s), so
// that silent clients cannot keep the connection slots forever.
TEST_F(MetricsServerTest, AClientThatNeverFinishesItsRequestIsClosedAfterTheTimeout) {
  const int fd = Connect(server_->port());
  ASSERT_GE(fd, 0);
  timeval tv{MetricsServer::kConnectionTimeoutMs / 1000 + 10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  const auto start = steady_clock::now();
  send(fd, "GET /met", 8, MSG_NOSIGNAL);
  char c;
  const ssize_t n = recv(fd, &c, 1, 0);
  const auto waited = steady_clock::now() - start;
  EXPECT_EQ(n, 0) << "not closed by the server (errno " << errno << ")";
  EXPECT_GE(waited, std::chrono::milliseconds(MetricsServer::kConnectionTimeoutMs - 500));
  EXPECT_LT(waited, std::chrono::milliseconds(MetricsServer::kConnectionTimeoutMs + 5000));
  close(fd);
}

TEST_F(MetricsServerTest, StopClosesOpenConnectionsPromptly) {
  const int fd = Connect(server_->port());
  ASSERT_GE(fd, 0);
  send(fd, "GET /", 5, MSG_NOSIGNAL);
  usleep(100'000);
  const auto start = steady_clock::now();
  server_->Stop();
  server_->Stop();  // idempotent
  EXPECT_LT(steady_clock::now() - start, std::chrono::seconds(2));
  EXPECT_EQ(ReadAll(fd), "");  // closed, not answered
  close(fd);
}

TEST(MetricsServerStartTest, BadAddressesAreInvalidArguments) {
  Metrics metrics;
  for (const char* addr : {"", "9090", "127.0.0.1:", "127.0.0.1:http", "127.0.0.1:70000",
                           "127.0.0.1:-1", "[::1:9090", "256.0.0.1:9090"}) {
    auto s = MetricsServer::Start(addr, metrics);
    ASSERT_FALSE(s.ok()) << addr;
    EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument) << addr << s.status();
    EXPECT_TRUE(absl::StrContains(s.status().message(), "--metrics-addr")) << s.status();
  }
  auto first = MetricsServer::Start("127.0.0.1:0", metrics);
  ASSERT_TRUE(first.ok()) << first.status();
  auto taken = MetricsServer::Start(absl::StrCat("127.0.0.1:", (*first)->port()), metrics);
  ASSERT_FALSE(taken.ok());
  EXPECT_EQ(taken.status().code(), absl::StatusCode::kInvalidArgument) << taken.status();
  EXPECT_TRUE(absl::StrContains(taken.status().message(), "cannot listen")) << taken.status();
}

}  // namespace
}  // namespace approvald::server
