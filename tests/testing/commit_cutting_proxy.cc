#include "tests/testing/commit_cutting_proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace approvald::testing {
namespace {

// A simple-protocol Query message carrying exactly "COMMIT": 'Q', int32 length 11, text, NUL.
constexpr absl::string_view kCommitMessage(
    "Q\0\0\0\x0b"
    "COMMIT\0",
    12);
// The extended protocol's Bind of the prepared statement `name`: 'B', int32 length, the unnamed
// portal (NUL), then the statement's name and its NUL.
bool CarriesBindOf(absl::string_view chunk, absl::string_view name) {
  const std::string needle =
      absl::StrCat(absl::string_view("\0", 1), name, absl::string_view("\0", 1));
  for (size_t at = chunk.find(needle); at != absl::string_view::npos;
       at = chunk.find(needle, at + 1)) {
    if (at >= 5 && chunk[at - 5] == 'B') return true;
  }
  return false;
}

bool WriteAll(int fd, const char* data, size_t n) {
  while (n > 0) {
    const ssize_t w = send(fd, data, n, MSG_NOSIGNAL);
    if (w <= 0) return false;
    data += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

}  // namespace

struct CommitCuttingProxy::Link {
  int client = -1;
  int server = -1;
  std::atomic<int> cut{-1};  ///< set when this link lost its COMMIT
  std::once_flag closed;
  void Close() {
    std::call_once(closed, [this] {
      shutdown(client, SHUT_RDWR);
      shutdown(server, SHUT_RDWR);
    });
  }
  ~Link() {
    if (client >= 0) close(client);
    if (server >= 0) close(server);
  }
};

std::unique_ptr<CommitCuttingProxy> CommitCuttingProxy::Start(const std::string& upstream_host,
                                                              int upstream_port) {
  std::unique_ptr<CommitCuttingProxy> proxy(new CommitCuttingProxy());
  proxy->upstream_host_ = upstream_host;
  proxy->upstream_port_ = upstream_port;
  proxy->listen_fd_ = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (proxy->listen_fd_ < 0 ||
      bind(proxy->listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      listen(proxy->listen_fd_, 64) != 0 ||
      getsockname(proxy->listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return nullptr;
  }
  proxy->port_ = ntohs(addr.sin_port);
  proxy->acceptor_ = std::thread([p = proxy.get()] { p->AcceptLoop(); });
  return proxy;
}

CommitCuttingProxy::~CommitCuttingProxy() {
  stop_ = true;
  shutdown(listen_fd_, SHUT_RDWR);
  if (acceptor_.joinable()) acceptor_.join();
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& link : links_) link->Close();
  }
  for (auto& t : threads_) t.join();
  close(listen_fd_);
}

void CommitCuttingProxy::Arm(Cut cut, std::string statement) {
  std::lock_guard<std::mutex> lock(mu_);
  statement_ = std::move(statement);
  armed_ = static_cast<int>(cut);
}

bool CommitCuttingProxy::Commits(absl::string_view chunk) {
  if (chunk.find(kCommitMessage) != absl::string_view::npos) return true;
  std::lock_guard<std::mutex> lock(mu_);
  return CarriesBindOf(chunk, statement_);
}

void CommitCuttingProxy::AcceptLoop() {
  while (!stop_) {
    pollfd pfd{listen_fd_, POLLIN, 0};
    if (poll(&pfd, 1, 100) <= 0) continue;
    const int client = accept(listen_fd_, nullptr, nullptr);
    if (client < 0) continue;
    const int server = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(upstream_port_));
    inet_pton(AF_INET, upstream_host_.c_str(), &addr.sin_addr);
    if (connect(server, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      close(client);
      close(server);
      continue;
    }
    auto link = std::make_shared<Link>();
    link->client = client;
    link->server = server;
    std::lock_guard<std::mutex> lock(mu_);
    links_.push_back(link);
    threads_.emplace_back([this, link] { PumpToServer(link); });
    threads_.emplace_back([this, link] { PumpToClient(link); });
  }
}

void CommitCuttingProxy::PumpToServer(std::shared_ptr<Link> link) {
  char buf[16384];
  while (true) {
    const ssize_t n = recv(link->client, buf, sizeof(buf), 0);
    if (n <= 0) break;
    const absl::string_view chunk(buf, static_cast<size_t>(n));
    if (armed_.load() >= 0 && Commits(chunk)) {
      const int cut = armed_.exchange(-1);
      if (cut >= 0) {
        link->cut = cut;
        cuts_.fetch_add(1);
        if (cut == static_cast<int>(Cut::kCommitLost)) break;  // never reaches the server
        // The COMMIT goes through; PumpToClient drops its reply and cuts the link.
      }
    }
    if (!WriteAll(link->server, buf, static_cast<size_t>(n))) break;
  }
  link->Close();
}

void CommitCuttingProxy::PumpToClient(std::shared_ptr<Link> link) {
  char buf[16384];
  while (true) {
    const ssize_t n = recv(link->server, buf, sizeof(buf), 0);
    if (n <= 0) break;
    if (link->cut.load() >= 0) break;  // the reply to the lost COMMIT (or later) never arrives
    if (!WriteAll(link->client, buf, static_cast<size_t>(n))) break;
  }
  link->Close();
}

}  // namespace approvald::testing
