#include "server/ops/metrics_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "spdlog/spdlog.h"

namespace approvald::server {
namespace {

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

/// One accepted connection: it reads a request head, writes one answer, then drains what the
/// client still sends until it closes (so that closing never resets an answer not yet read).
struct Connection {
  enum class State { kReading, kWriting, kDraining };
  Connection(int fd, int64_t deadline_ms) : fd(fd), deadline_ms(deadline_ms) {}
  int fd;
  int64_t deadline_ms;
  State state = State::kReading;
  std::string in;
  std::string out;
  size_t sent = 0;
};

std::string Answer(int code, const char* reason, const std::string& body, bool head_only,
                   const char* extra_headers = "") {
  return absl::StrCat("HTTP/1.1 ", code, " ", reason, "\r\n",
                      code == 200 ? "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
                                  : "Content-Type: text/plain; charset=utf-8\r\n",
                      extra_headers, "Content-Length: ", body.size(),
                      "\r\nConnection: close\r\n\r\n", head_only ? "" : body);
}

/// The answer to a complete request head (`head` ends before its blank line).
std::string Respond(absl::string_view head, const Metrics& metrics) {
  const absl::string_view line = head.substr(0, head.find_first_of("\r\n"));
  const std::vector<absl::string_view> parts = absl::StrSplit(line, ' ');
  if (parts.size() != 3 || parts[0].empty() || parts[1].empty() ||
      !absl::StartsWith(parts[2], "HTTP/1.")) {
    return Answer(400, "Bad Request", "malformed request line\n", false);
  }
  const bool head_only = parts[0] == "HEAD";
  if (parts[0] != "GET" && !head_only) {
    return Answer(405, "Method Not Allowed", "only GET and HEAD\n", false, "Allow: GET, HEAD\r\n");
  }
  const absl::string_view path = parts[1].substr(0, parts[1].find('?'));
  if (path != "/metrics") return Answer(404, "Not Found", "see /metrics\n", head_only);
  return Answer(200, "OK", metrics.Render(), head_only);
}

/// Where the request head ends (just past its blank line), or npos while it is incomplete.
size_t HeadEnd(const std::string& in) {
  const size_t crlf = in.find("\r\n\r\n");
  const size_t lf = in.find("\n\n");
  if (crlf == std::string::npos && lf == std::string::npos) return std::string::npos;
  return crlf < lf ? crlf + 4 : lf + 2;
}

/// Binds and listens on the first address `host`:`port` resolves to; the socket, or an error.
absl::StatusOr<int> Listen(const std::string& addr, const std::string& host, int port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string service = std::to_string(port);
  if (int rc = getaddrinfo(host.empty() ? nullptr : host.c_str(), service.c_str(), &hints, &found);
      rc != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--metrics-addr: cannot resolve ", addr, ": ", gai_strerror(rc)));
  }
  std::string last_error = "no address";
  int fd = -1;
  for (addrinfo* a = found; a != nullptr && fd < 0; a = a->ai_next) {
    fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) {
      last_error = std::strerror(errno);
      continue;
    }
    const int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, a->ai_addr, a->ai_addrlen) != 0 || listen(fd, SOMAXCONN) != 0) {
      last_error = std::strerror(errno);
      close(fd);
      fd = -1;
    }
  }
  freeaddrinfo(found);
  if (fd < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--metrics-addr: cannot listen on ", addr, ": ", last_error));
  }
  return fd;
}

int BoundPort(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return -1;
  if (ss.ss_family == AF_INET) return ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  if (ss.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
  return -1;
}

/// Reads what `c` sent; false once the connection is done with (closed, failed or too big).
bool ReadSome(Connection& c, const Metrics& metrics) {
  char buf[4096];
  for (;;) {
    const ssize_t n = recv(c.fd, buf, sizeof(buf), 0);
    if (n == 0) return false;
    if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
    if (c.state == Connection::State::kDraining) continue;
    c.in.append(buf, static_cast<size_t>(n));
    const size_t end = HeadEnd(c.in);
    if (end == std::string::npos && c.in.size() <= MetricsServer::kMaxRequestHead) continue;
    c.out = end == std::string::npos || end > MetricsServer::kMaxRequestHead
                ? Answer(431, "Request Header Fields Too Large", "request head over 8 KiB\n", false)
                : Respond(absl::string_view(c.in).substr(0, end), metrics);
    c.in.clear();
    c.state = Connection::State::kWriting;
    return true;
  }
}

/// Sends what is left of the answer; false if the connection failed.
bool WriteSome(Connection& c) {
  while (c.sent < c.out.size()) {
    const ssize_t n = send(c.fd, c.out.data() + c.sent, c.out.size() - c.sent, MSG_NOSIGNAL);
    if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
    c.sent += static_cast<size_t>(n);
  }
  // Answered: say so, then read (and drop) until the client closes, for at most a second.
  shutdown(c.fd, SHUT_WR);
  c.state = Connection::State::kDraining;
  c.deadline_ms = std::min(c.deadline_ms, NowMs() + 1000);
  return true;
}

}  // namespace

absl::StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::Start(const std::string& addr,
                                                                    const Metrics& metrics) {
  const size_t colon = addr.rfind(':');
  int port = -1;
  if (colon == std::string::npos || !absl::SimpleAtoi(addr.substr(colon + 1), &port) || port < 0 ||
      port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("--metrics-addr: not host:port: ", addr));
  }
  std::string host = addr.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  absl::StatusOr<int> fd = Listen(addr, host, port);
  if (!fd.ok()) return fd.status();
  int wake[2];
  if (pipe2(wake, O_NONBLOCK | O_CLOEXEC) != 0) {
    close(*fd);
    return absl::InternalError(absl::StrCat("metrics server: pipe: ", std::strerror(errno)));
  }
  std::unique_ptr<MetricsServer> s(
      new MetricsServer(metrics, *fd, wake[0], wake[1], BoundPort(*fd)));
  s->thread_ = std::thread([server = s.get()] { server->Serve(); });
  return s;
}

MetricsServer::MetricsServer(const Metrics& metrics, int listen_fd, int wake_read, int wake_write,
                             int port)
    : metrics_(metrics),
      listen_fd_(listen_fd),
      wake_read_(wake_read),
      wake_write_(wake_write),
      port_(port) {}

MetricsServer::~MetricsServer() {
  Stop();
  close(listen_fd_);
  close(wake_read_);
  close(wake_write_);
}

void MetricsServer::Stop() {
  std::call_once(stop_once_, [this] {
    const char byte = 0;
    while (write(wake_write_, &byte, 1) < 0 && errno == EINTR) {
    }
    if (thread_.joinable()) thread_.join();
  });
}

void MetricsServer::Serve() {
  std::vector<Connection> conns;
  std::vector<pollfd> fds;
  int64_t accept_paused_until = 0;  // after running out of descriptors, rather than spin
  for (;;) {
    const int64_t now = NowMs();
    int timeout = now < accept_paused_until ? static_cast<int>(accept_paused_until - now) : 1000;
    for (const Connection& c : conns) {
      timeout = static_cast<int>(std::clamp<int64_t>(c.deadline_ms - now, 0, timeout));
    }
    fds.clear();
    fds.push_back({wake_read_, POLLIN, 0});
    fds.push_back({listen_fd_, static_cast<short>(now < accept_paused_until ? 0 : POLLIN), 0});
    for (const Connection& c : conns) {
      fds.push_back(
          {c.fd, static_cast<short>(c.state == Connection::State::kWriting ? POLLOUT : POLLIN), 0});
    }
    if (poll(fds.data(), fds.size(), timeout) < 0 && errno != EINTR) {
      spdlog::error("metrics server: poll: {}", std::strerror(errno));
      break;
    }
    if (fds[0].revents != 0) break;  // Stop()
    const int64_t after = NowMs();
    std::vector<Connection> kept;
    kept.reserve(conns.size());
    for (size_t i = 0; i < conns.size(); ++i) {
      Connection& c = conns[i];
      const short ev = fds[i + 2].revents;
      bool keep = after < c.deadline_ms;
      if (keep && (ev & (POLLERR | POLLNVAL)) != 0) keep = false;
      if (keep && (ev & (POLLIN | POLLHUP)) != 0 && c.state != Connection::State::kWriting) {
        keep = ReadSome(c, metrics_);
      }
      if (keep && c.state == Connection::State::kWriting) keep = WriteSome(c);
      if (keep) {
        kept.push_back(std::move(c));
      } else {
        close(c.fd);
      }
    }
    conns = std::move(kept);
    if ((fds[1].revents & POLLIN) != 0) {
      for (;;) {
        const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
          if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
            spdlog::warn("metrics server: accept: {}", std::strerror(errno));
            accept_paused_until = after + 100;
          }
          break;  // EAGAIN, or a connection that failed before we took it
        }
        if (conns.size() >= kMaxConnections) {
          // Full: the connection that has been sending its request head the longest makes
          // room (a scrape sends its head at once, a slow or hostile client never finishes),
          // so slow clients, however many, cannot keep a scrape out.
          auto oldest = conns.end();
          for (auto it = conns.begin(); it != conns.end(); ++it) {
            if (it->state == Connection::State::kReading &&
                (oldest == conns.end() || it->deadline_ms < oldest->deadline_ms)) {
              oldest = it;
            }
          }
          if (oldest == conns.end()) {
            close(fd);
            continue;
          }
          close(oldest->fd);
          conns.erase(oldest);
        }
        conns.emplace_back(fd, after + kConnectionTimeoutMs);
      }
    }
  }
  for (const Connection& c : conns) close(c.fd);
}

}  // namespace approvald::server
