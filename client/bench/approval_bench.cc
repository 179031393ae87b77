// approval-bench: a load generator for approvald on gRPC's async client (a completion queue
// drained by one thread; watch streams on the callback API).
#include <cstdio>
#include <iostream>

#include "client/bench/bench_options.h"
#include "client/bench/modes.h"
#include "client/bench/report.h"

int main(int argc, char** argv) {
  using namespace approvald::bench;
  absl::StatusOr<Options> options = ParseOptions(argc, argv);
  if (!options.ok()) {
    if (options.status().code() == absl::StatusCode::kCancelled) {  // --help
      std::cout << Usage();
      return 0;
    }
    std::cerr << "approval-bench: " << options.status().message() << "\n\n" << Usage();
    return 2;
  }
  Stubs stubs(*options);
  absl::StatusOr<ModeResult> result;
  const std::string& mode = options->mode;
  if (mode == "create") {
    result = RunCreate(stubs, *options);
  } else if (mode == "approve" || mode == "reject") {
    result = RunDecide(stubs, *options, mode == "approve");
  } else if (mode == "mixed") {
    result = RunMixed(stubs, *options);
  } else if (mode == "contended") {
    result = RunContended(stubs, *options);
  } else if (mode == "execute") {
    result = RunExecute(stubs, *options);
  } else {
    result = RunWatchFanout(stubs, *options);
  }
  WaitForCalls();  // no callback may outlive the channels
  if (!result.ok()) {
    std::cerr << "approval-bench: " << result.status().message() << "\n";
    return 1;
  }
  std::cout << (options->json ? JsonReport(*options, *result) + "\n"
                              : TextReport(*options, *result));
  return result->loop.summary.calls > 0 ? 0 : 1;
}
