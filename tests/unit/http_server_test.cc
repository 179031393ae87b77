// HttpServer beyond /metrics: answers given later from other threads, streamed answers, request
// bodies and their limit, and a stop while requests wait.

#include "server/ops/http_server.h"

#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "tests/testing/raw_http.h"

namespace approvald::server {
namespace {

using testing::Connect;
using testing::Fetch;
using testing::ReadAll;

class HttpServerTest : public ::testing::Test {
 protected:
  void Start(HttpHandler handler, size_t max_body = 1024, MemoryBudget* budget = nullptr) {
    HttpOptions options;
    options.flag = "--test";
    options.addr = "127.0.0.1:0";
    options.max_body = max_body;
    options.budget = budget;
    auto s = HttpServer::Start(std::move(options), std::move(handler));
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = std::move(*s);
  }
  std::string Body(const std::string& answer) {
    return answer.substr(std::min(answer.size(), answer.find("\r\n\r\n") + 4));
  }

  std::unique_ptr<HttpServer> server_;
};

TEST_F(HttpServerTest, AnAnswerMayComeLaterFromAnotherThread) {
  std::mutex mu;
  std::vector<std::thread> answerers;
  Start([&](const std::shared_ptr<HttpExchange>& e) {
    std::lock_guard<std::mutex> lock(mu);
    answerers.emplace_back([e] {
      usleep(50'000);
      e->Answer(HttpAnswer{201, "text/plain", "later " + e->request().body, {{"X-A", "1"}}});
    });
  });
  std::vector<std::thread> clients;
  std::atomic<int> ok{0};
  for (int i = 0; i < 20; ++i) {
    clients.emplace_back([&, i] {
      const std::string body = absl::StrCat("n", i);
      const std::string out = Fetch(
          server_->port(),
          absl::StrCat("POST /x HTTP/1.1\r\nContent-Length: ", body.size(), "\r\n\r\n", body));
      if (absl::StartsWith(out, "HTTP/1.1 201 ") && absl::StrContains(out, "X-A: 1\r\n") &&
          Body(out) == "later " + body) {
        ++ok;
      }
    });
  }
  for (auto& t : clients) t.join();
  for (auto& t : answerers) t.join();
  EXPECT_EQ(ok.load(), 20);
}

TEST_F(HttpServerTest, AStreamedAnswerIsSentAsItIsWrittenAndEnds) {
  std::shared_ptr<HttpExchange> held;
  absl::Notification started;
  Start([&](const std::shared_ptr<HttpExchange>& e) {
    e->StartStream(HttpAnswer{200, "text/event-stream", "first\n", {}});
    held = e;
    started.Notify();
  });
  const int fd = Connect(server_->port());
  ASSERT_GE(fd, 0);
  const std::string request = "GET /s HTTP/1.1\r\nHost: x\r\n\r\n";
  send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  started.WaitForNotification();
  std::string got;
  char buf[4096];
  while (!absl::StrContains(got, "first\n")) {
    const ssize_t n = recv(fd, buf, sizeof(buf), 0);
    ASSERT_GT(n, 0);
    got.append(buf, static_cast<size_t>(n));
  }
  EXPECT_TRUE(absl::StartsWith(got, "HTTP/1.1 200 ")) << got;
  EXPECT_TRUE(absl::StrContains(got, "Transfer-Encoding: chunked")) << got;
  for (int i = 0; i < 100; ++i) EXPECT_TRUE(held->Write(absl::StrCat("line ", i, "\n")));
  held->End();
  got += ReadAll(fd);
  close(fd);
  EXPECT_TRUE(absl::StrContains(got, "line 0\n")) << got;
  EXPECT_TRUE(absl::StrContains(got, "line 99\n")) << got;
  EXPECT_TRUE(absl::EndsWith(got, "0\r\n\r\n")) << got;  // the last chunk
  EXPECT_FALSE(held->Write("after the end"));
}

TEST_F(HttpServerTest, ABodyOverTheLimitIsRefusedAndTheBudgetIsGivenBack) {
  MemoryBudget budget(1 << 20);
  std::atomic<int> handled{0};
  Start(
      [&](const std::shared_ptr<HttpExchange>& e) {
        ++handled;
        e->Answer(HttpAnswer{200, "text/plain", std::to_string(e->request().body.size()), {}});
      },
      1000, &budget);
  // Announced too large: refused before it is sent.
  std::string out = Fetch(server_->port(), "POST /x HTTP/1.1\r\nContent-Length: 5000\r\n\r\n");
  EXPECT_TRUE(absl::StartsWith(out, "HTTP/1.1 413 ")) << out;
  // Chunked, growing past the limit as it comes.
  std::string chunked = "POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 3; ++i) absl::StrAppend(&chunked, "1F4\r\n", std::string(500, 'a'), "\r\n");
  chunked += "0\r\n\r\n";
  out = Fetch(server_->port(), chunked);
  EXPECT_TRUE(absl::StartsWith(out, "HTTP/1.1 413 ")) << out;
  out = Fetch(server_->port(), absl::StrCat("POST /x HTTP/1.1\r\nContent-Length: 1000\r\n\r\n",
                                            std::string(1000, 'b')));
  EXPECT_EQ(Body(out), "1000") << out;
  EXPECT_EQ(handled.load(), 1);
  server_->Stop();
  EXPECT_EQ(budget.used(), 0u);
}

TEST_F(HttpServerTest, StopAnswersRequestsThatWaitAndEndsStreams) {
  std::mutex mu;
  std::vector<std::shared_ptr<HttpExchange>> waiting;
  std::atomic<int> gone{0};
  Start([&](const std::shared_ptr<HttpExchange>& e) {
    e->OnGone([&] { ++gone; });
    if (e->request().path == "/stream") e->StartStream(HttpAnswer{200, "text/plain", "s\n", {}});
    std::lock_guard<std::mutex> lock(mu);
    waiting.push_back(e);  // never answered
  });
  std::vector<std::thread> clients;
  std::atomic<int> refused{0};
  std::atomic<int> ended{0};
  for (int i = 0; i < 10; ++i) {
    clients.emplace_back([&, i] {
      const std::string out = Fetch(
          server_->port(), i % 2 ? "GET /wait HTTP/1.1\r\n\r\n" : "GET /stream HTTP/1.1\r\n\r\n");
      if (absl::StartsWith(out, "HTTP/1.1 503 ")) ++refused;
      if (absl::StartsWith(out, "HTTP/1.1 200 ") && absl::EndsWith(out, "0\r\n\r\n")) ++ended;
    });
  }
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (waiting.size() == 10) break;
    }
    usleep(1000);
  }
  server_->Stop(absl::Milliseconds(100));
  for (auto& t : clients) t.join();
  EXPECT_EQ(refused.load(), 5);
  EXPECT_EQ(ended.load(), 5);
  EXPECT_EQ(gone.load(), 10);
  EXPECT_LT(Connect(server_->port()), 0);  // no longer listening
}

}  // namespace
}  // namespace approvald::server
