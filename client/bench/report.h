#pragma once

#include <string>

#include "client/bench/bench_options.h"
#include "client/bench/modes.h"

namespace approvald::bench {

/// The human-readable report (stdout without --json).
std::string TextReport(const Options& options, const ModeResult& result);
/// One JSON object: mode, concurrency, calls, calls_per_s, p50_ms .. max_ms, answers, errors
/// (non-OK answers by code), and the mode's own figures.
std::string JsonReport(const Options& options, const ModeResult& result);

}  // namespace approvald::bench
