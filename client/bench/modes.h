#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "client/bench/bench_rpc.h"
#include "client/bench/closed_loop.h"

namespace approvald::bench {

/// What a mode measured: the calls, plus mode-specific figures for the report.
struct ModeResult {
  LoopResult loop;
  std::vector<std::pair<std::string, double>> extra;  ///< name, value (in the JSON too)
  std::vector<std::string> notes;                     ///< printed lines (warnings)
};

/// Creates `count` pending approvals (concurrently, not timed) and returns their ids.
absl::StatusOr<std::vector<std::string>> PrepareApprovals(Stubs& stubs, const Options& options,
                                                          int count);

absl::StatusOr<ModeResult> RunCreate(Stubs& stubs, const Options& options);
absl::StatusOr<ModeResult> RunDecide(Stubs& stubs, const Options& options, bool approve);
absl::StatusOr<ModeResult> RunMixed(Stubs& stubs, const Options& options);
absl::StatusOr<ModeResult> RunContended(Stubs& stubs, const Options& options);
absl::StatusOr<ModeResult> RunWatchFanout(Stubs& stubs, const Options& options);
absl::StatusOr<ModeResult> RunExecute(Stubs& stubs, const Options& options);

}  // namespace approvald::bench
