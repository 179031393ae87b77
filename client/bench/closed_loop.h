#pragma once

#include <functional>
#include <string>

#include "client/bench/bench_options.h"
#include "client/bench/latency_recorder.h"

namespace approvald::bench {

/// Called when a call of a loop completes, with its answer ("OK", "CODE/REASON").
using DoneFn = std::function<void(const std::string& answer)>;
/// Starts the next call of loop `slot` and arranges for `done` to run when it completes;
/// returns false when there is no more work (the loop retires).
using IssueFn = std::function<bool(int slot, DoneFn done)>;

struct LoopResult {
  LatencyRecorder::Summary summary;
  double window_s = 0;   ///< the measured window (shorter if the work ran out)
  bool ran_out = false;  ///< the work ran out before the end of the window
};

/// Runs `concurrency` loops, each one call in flight at a time, for warmup + duration seconds.
/// Calls that complete inside the measured window are recorded; a progress line goes to
/// stderr every second unless `quiet`. With `mark_phases`, the lines "approval-bench: measure
/// start" and "approval-bench: measure end" go to stderr as the window opens and closes (so that
/// a driver can sample the server's CPU time over exactly that window).
LoopResult RunClosedLoop(int concurrency, double warmup_s, double duration_s, bool quiet,
                         const std::string& label, const IssueFn& issue, bool mark_phases = false);

}  // namespace approvald::bench
