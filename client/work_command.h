#pragma once

#include <grpcpp/channel.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"

namespace approvald::client {

/// `approvalctl work`: an executor made of any program.
struct WorkOptions {
  std::vector<std::string> action_types;
  int concurrency = 1;
  absl::Duration lease;              ///< zero: the type's
  int fatal_exit_code = 100;         ///< the program's exit code that fails an execution for good
  bool once = false;                 ///< exit after one execution
  std::vector<std::string> command;  ///< the program and its arguments
};

/// What the program gets and what becomes of its exit, the one statement of it:
/// - stdin: the approval as JSON (protobuf's JSON mapping of approvals.v1.Approval);
/// - environment: approvalctl's own, without its APPROVALD_* variables (the token stays out),
///   plus APPROVALD_IDEMPOTENCY_KEY (the same for every attempt: pass it on to the API you
///   call), APPROVALD_EXECUTION_ID, APPROVALD_APPROVAL_ID, APPROVALD_ACTION_TYPE,
///   APPROVALD_ATTEMPT;
/// - exit 0: the execution completes with stdout as its result (a JSON object; other output is
///   kept as {"output": "..."});
/// - exit `fatal_exit_code`: it fails for good (the approval ends FAILED with stderr's last
///   line or the exit code); any other exit or a signal: the attempt fails and is retried.
/// The lease is extended while the program runs. SIGINT or SIGTERM stops claiming; running
/// programs (in process groups of their own, so a Ctrl-C does not reach them) finish first. Returns
/// the process exit code (0, or 1 on an error that stops it).
int RunWork(std::shared_ptr<grpc::Channel> channel, const std::string& token,
            const WorkOptions& options);

}  // namespace approvald::client
