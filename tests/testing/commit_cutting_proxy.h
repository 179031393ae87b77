#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"

namespace approvald::testing {

/// A TCP proxy in front of PostgreSQL that can lose one COMMIT, as a network fault would: once
/// armed, the next `COMMIT` (simple protocol, or the Bind of a prepared statement that ends the
/// transaction) either reaches the server and its reply is dropped (the transaction commits,
/// the client cannot know) or is dropped itself (it never commits); either way that client
/// connection is then cut. Everything else passes through.
class CommitCuttingProxy {
 public:
  enum class Cut { kReplyLost, kCommitLost };

  /// Listens on 127.0.0.1:<free port>, forwarding to upstream_host:upstream_port.
  static std::unique_ptr<CommitCuttingProxy> Start(const std::string& upstream_host,
                                                   int upstream_port);
  ~CommitCuttingProxy();

  int port() const { return port_; }
  /// Loses the next COMMIT that any client sends. `statement` names the prepared statement that
  /// commits: approvald's "commit" (db/queries/commit.sql), or a statement sent alone as its
  /// own transaction (e.g. "decide_at_once").
  void Arm(Cut cut, std::string statement = "commit");
  /// How many COMMITs were lost so far.
  int cuts() const { return cuts_.load(); }

 private:
  struct Link;
  CommitCuttingProxy() = default;
  void AcceptLoop();
  bool Commits(absl::string_view chunk);
  void PumpToServer(std::shared_ptr<Link> link);
  void PumpToClient(std::shared_ptr<Link> link);

  int listen_fd_ = -1;
  int port_ = 0;
  std::string upstream_host_;
  int upstream_port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> armed_{-1};  ///< -1 or a Cut
  std::atomic<int> cuts_{0};
  std::mutex mu_;
  std::string statement_ ABSL_GUARDED_BY(mu_) = "commit";
  std::vector<std::shared_ptr<Link>> links_;
  std::vector<std::thread> threads_;
  std::thread acceptor_;
};

}  // namespace approvald::testing
