#include "client/work_command.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <iostream>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "approvals/v1/approvals.grpc.pb.h"
#include "client/approval_client.h"
#include "google/protobuf/util/json_util.h"

extern char** environ;

namespace approvald::client {
namespace {

namespace v1 = approvals::v1;
namespace pb = google::protobuf;

constexpr size_t kMaxOutput = 1 << 20;  // a result beyond it is refused by the server anyway
constexpr size_t kErrorTail = 2048;
constexpr absl::Duration kClaimWait = absl::Seconds(10);

std::atomic<bool> stopping{false};
void OnSignal(int) { stopping.store(true); }

std::mutex log_mu;
void Log(const std::string& line) {
  std::lock_guard<std::mutex> lock(log_mu);
  std::cerr << "approvalctl work: " << line << "\n";
}

pb::Duration ToProto(absl::Duration d) {
  pb::Duration out;
  out.set_seconds(absl::IDivDuration(d, absl::Seconds(1), &d));
  out.set_nanos(static_cast<int32_t>(absl::ToInt64Nanoseconds(d)));
  return out;
}

class Worker {
 public:
  Worker(std::shared_ptr<grpc::Channel> channel, std::string token, const WorkOptions& options)
      : stub_(v1::ExecutionService::NewStub(channel)), token_(std::move(token)), o_(options) {}

  // Claims and runs executions until stopped (or one, with --once). False on a fatal error.
  bool Loop() {
    while (!stopping.load()) {
      v1::ClaimExecutionsRequest req;
      for (const std::string& t : o_.action_types) req.add_action_types(t);
      req.set_max_executions(1);
      if (o_.lease > absl::ZeroDuration()) *req.mutable_lease_duration() = ToProto(o_.lease);
      *req.mutable_wait() = ToProto(kClaimWait);
      v1::ClaimExecutionsResponse resp;
      grpc::ClientContext ctx;
      Prepare(ctx, kClaimWait + absl::Seconds(10));
      const grpc::Status st = stub_->ClaimExecutions(&ctx, req, &resp);
      if (!st.ok()) {
        const auto code = st.error_code();
        Log("claim: " + st.error_message());
        if (code != grpc::StatusCode::UNAVAILABLE && code != grpc::StatusCode::DEADLINE_EXCEEDED &&
            code != grpc::StatusCode::RESOURCE_EXHAUSTED) {
          return false;  // a bad type, missing role or token: retrying cannot help
        }
        absl::SleepFor(absl::Seconds(1));
        continue;
      }
      for (const v1::Execution& x : resp.executions()) {
        Run(x);
        if (o_.once) return true;
      }
    }
    return true;
  }

 private:
  void Prepare(grpc::ClientContext& ctx, absl::Duration timeout) const {
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
    if (!token_.empty()) ctx.AddMetadata("authorization", "Bearer " + token_);
  }

  // Runs the program for one execution and records its outcome.
  void Run(const v1::Execution& x) {
    std::string input;
    pb::util::JsonPrintOptions print;
    (void)pb::util::MessageToJsonString(x.approval(), &input, print);
    input.push_back('\n');
    const absl::Duration lease =
        x.has_lease_expire_time()
            ? absl::FromUnixSeconds(x.lease_expire_time().seconds()) - absl::Now()
            : absl::Seconds(30);
    Log(absl::StrCat("execution ", x.execution_id(), " (approval ", x.approval().id(), ", attempt ",
                     x.attempt(), "): running"));
    int status = 0;
    std::string out, err;
    bool lost = false;
    if (!Spawn(x, input, std::max(lease, absl::Seconds(3)), &status, &out, &err, &lost)) {
      Fail(x, "could not start the program: " + err, true);
      return;
    }
    if (lost) {
      Log(absl::StrCat("execution ", x.execution_id(), ": the lease was lost; not recorded"));
      return;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
      Complete(x, out);
    } else if (WIFEXITED(status) && WEXITSTATUS(status) == o_.fatal_exit_code) {
      Fail(x, Why(status, err), false);
    } else {
      Fail(x, Why(status, err), true);
    }
  }

  static std::string Why(int status, const std::string& err) {
    std::string last(absl::StripTrailingAsciiWhitespace(err));
    if (const size_t nl = last.rfind('\n'); nl != std::string::npos) last = last.substr(nl + 1);
    const std::string how = WIFEXITED(status) ? absl::StrCat("exit code ", WEXITSTATUS(status))
                                              : absl::StrCat("signal ", WTERMSIG(status));
    return last.empty() ? how : absl::StrCat(last, " (", how, ")");
  }

  // Starts the program, feeds stdin, collects stdout and stderr's tail, and extends the lease
  // every third of it until the program exits.
  bool Spawn(const v1::Execution& x, const std::string& input, absl::Duration lease, int* status,
             std::string* out, std::string* err, bool* lost) {
    int in_pipe[2], out_pipe[2], err_pipe[2];
    if (pipe2(in_pipe, O_CLOEXEC) != 0 || pipe2(out_pipe, O_CLOEXEC) != 0 ||
        pipe2(err_pipe, O_CLOEXEC) != 0) {
      *err = "pipe failed";
      return false;
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, in_pipe[0], 0);
    posix_spawn_file_actions_adddup2(&actions, out_pipe[1], 1);
    posix_spawn_file_actions_adddup2(&actions, err_pipe[1], 2);
    std::vector<std::string> env_strings = {"APPROVALD_IDEMPOTENCY_KEY=" + x.idempotency_key(),
                                            "APPROVALD_EXECUTION_ID=" + x.execution_id(),
                                            "APPROVALD_APPROVAL_ID=" + x.approval().id(),
                                            "APPROVALD_ACTION_TYPE=" + x.approval().action_type(),
                                            absl::StrCat("APPROVALD_ATTEMPT=", x.attempt())};
    std::vector<char*> env;
    for (char** e = environ; *e != nullptr; ++e) {
      if (std::string(*e).rfind("APPROVALD_", 0) != 0) env.push_back(*e);
    }
    for (std::string& s : env_strings) env.push_back(s.data());
    env.push_back(nullptr);
    std::vector<char*> argv;
    std::vector<std::string> args = o_.command;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    // A process group of its own: a Ctrl-C (or a supervisor's signal to approvalctl's group)
    // stops the claiming, and the running programs still finish.
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
    posix_spawnattr_setpgroup(&attr, 0);
    pid_t pid = 0;
    const int rc = posix_spawnp(&pid, argv[0], &actions, &attr, argv.data(), env.data());
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&actions);
    close(in_pipe[0]);
    close(out_pipe[1]);
    close(err_pipe[1]);
    if (rc != 0) {
      close(in_pipe[1]);
      close(out_pipe[0]);
      close(err_pipe[0]);
      *err = absl::StrCat(o_.command[0], ": ", strerror(rc));
      return false;
    }
    fcntl(in_pipe[1], F_SETFL, O_NONBLOCK);
    size_t written = 0;
    int in_fd = in_pipe[1];
    absl::Time next_extend = absl::Now() + lease / 3;
    pollfd fds[3] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}, {in_fd, POLLOUT, 0}};
    while (fds[0].fd >= 0 || fds[1].fd >= 0) {
      const int wait_ms = static_cast<int>(
          std::max<int64_t>(absl::ToInt64Milliseconds(next_extend - absl::Now()), 0));
      const int n = poll(fds, 3, wait_ms);
      if (n < 0 && errno != EINTR) break;
      if (absl::Now() >= next_extend) {
        if (!Extend(x, lease)) {
          *lost = true;
          kill(pid, SIGTERM);  // someone else owns it now: stop the work
        }
        next_extend = absl::Now() + lease / 3;
      }
      if (n <= 0) continue;
      for (int i = 0; i < 2; ++i) {
        if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
        char buf[8192];
        const ssize_t got = read(fds[i].fd, buf, sizeof(buf));
        if (got <= 0) {
          close(fds[i].fd);
          fds[i].fd = -1;
          continue;
        }
        std::string& into = i == 0 ? *out : *err;
        into.append(buf, static_cast<size_t>(got));
        if (i == 1) {
          std::cerr.write(buf, got);  // the program's diagnostics, as it writes them
          if (err->size() > kErrorTail) err->erase(0, err->size() - kErrorTail);
        } else if (out->size() > kMaxOutput) {
          out->resize(kMaxOutput);
        }
      }
      if (fds[2].fd >= 0 && (fds[2].revents & (POLLOUT | POLLERR | POLLHUP))) {
        const ssize_t put = write(in_fd, input.data() + written, input.size() - written);
        if (put > 0) written += static_cast<size_t>(put);
        if (put < 0 && errno != EAGAIN) written = input.size();  // it closed its stdin
        if (written == input.size()) {
          close(in_fd);
          fds[2].fd = -1;
        }
      }
    }
    if (fds[2].fd >= 0) close(fds[2].fd);
    while (waitpid(pid, status, 0) < 0 && errno == EINTR) {
    }
    return true;
  }

  bool Extend(const v1::Execution& x, absl::Duration lease) {
    v1::ExtendLeaseRequest req;
    req.set_execution_id(x.execution_id());
    req.set_lease_token(x.lease_token());
    *req.mutable_lease_duration() = ToProto(lease);
    v1::Execution resp;
    grpc::ClientContext ctx;
    Prepare(ctx, absl::Seconds(10));
    const grpc::Status st = stub_->ExtendLease(&ctx, req, &resp);
    if (st.ok()) return true;
    Log(absl::StrCat("execution ", x.execution_id(),
                     ": extending the lease: ", st.error_message()));
    return st.error_code() != grpc::StatusCode::FAILED_PRECONDITION;  // LEASE_LOST
  }

  void Complete(const v1::Execution& x, const std::string& out) {
    v1::CompleteExecutionRequest req;
    req.set_execution_id(x.execution_id());
    req.set_lease_token(x.lease_token());
    const std::string trimmed(absl::StripAsciiWhitespace(out));
    if (!trimmed.empty() && !pb::util::JsonStringToMessage(trimmed, req.mutable_result()).ok()) {
      req.mutable_result()->Clear();
      (*req.mutable_result()->mutable_fields())["output"].set_string_value(trimmed);
    }
    Record("complete", x, [&](grpc::ClientContext* ctx, v1::Execution* resp) {
      return stub_->CompleteExecution(ctx, req, resp);
    });
  }

  void Fail(const v1::Execution& x, const std::string& error, bool retryable) {
    v1::FailExecutionRequest req;
    req.set_execution_id(x.execution_id());
    req.set_lease_token(x.lease_token());
    req.set_error(error.empty() ? "failed" : error.substr(0, 2000));
    req.set_retryable(retryable);
    Record(retryable ? "fail (retryable)" : "fail (for good)", x,
           [&](grpc::ClientContext* ctx, v1::Execution* resp) {
             return stub_->FailExecution(ctx, req, resp);
           });
  }

  // Sends an outcome, retrying while the server cannot be reached: a repeat with the same
  // lease token answers the recorded outcome, so a lost answer is safe to resend.
  template <typename Call>
  void Record(const char* what, const v1::Execution& x, Call call) {
    for (int attempt = 0;; ++attempt) {
      v1::Execution resp;
      grpc::ClientContext ctx;
      Prepare(ctx, absl::Seconds(10));
      const grpc::Status st = call(&ctx, &resp);
      if (st.ok()) {
        Log(absl::StrCat("execution ", x.execution_id(), ": ", what, " -> ",
                         v1::ExecutionState_Name(resp.state())));
        return;
      }
      const bool transient = st.error_code() == grpc::StatusCode::UNAVAILABLE ||
                             st.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED ||
                             st.error_code() == grpc::StatusCode::UNKNOWN;
      if (!transient || attempt >= 30) {
        Log(absl::StrCat("execution ", x.execution_id(), ": ", what, ": ", st.error_message()));
        return;
      }
      absl::SleepFor(absl::Seconds(1));
    }
  }

  std::unique_ptr<v1::ExecutionService::Stub> stub_;
  const std::string token_;
  const WorkOptions& o_;
};

}  // namespace

int RunWork(std::shared_ptr<grpc::Channel> channel, const std::string& token,
            const WorkOptions& options) {
  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  std::signal(SIGPIPE, SIG_IGN);  // a program that closes its stdin early
  std::atomic<bool> failed{false};
  std::vector<std::thread> threads;
  const int n = options.once ? 1 : std::max(1, options.concurrency);
  for (int i = 0; i < n; ++i) {
    threads.emplace_back([&] {
      Worker worker(channel, token, options);
      if (!worker.Loop()) {
        failed.store(true);
        stopping.store(true);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  return failed.load() ? 1 : 0;
}

}  // namespace approvald::client
