#pragma once

#include <map>
#include <string>

#include "absl/status/statusor.h"

namespace approvald::bench {

/// approval-bench's command line (see Usage()).
struct Options {
  std::string target = "127.0.0.1:50051";
  std::string token;            ///< the deciding caller (approve, reject, contended; get, list)
  std::string requester_token;  ///< creates approvals (defaults to --token)
  std::string worker_token;     ///< execute: claims and completes (defaults to --token)
  int workers = 16;             ///< execute: claim-and-complete loops
  std::string mode = "approve";
  int concurrency = 16;  ///< calls in flight
  double duration_s = 10;
  double warmup_s = 2;
  std::string action_type = "noop";
  int payload_bytes = 0;  ///< a string of this size in action_data
  bool json = false;
  int channels = 1;       ///< HTTP/2 connections, calls spread over them (one, as most clients)
  double deadline_s = 5;  ///< every call's deadline, as clients set one
  int approvals = 0;      ///< approve/reject: how many to create beforehand (0: estimate)
  int racers = 64;        ///< contended: racers per approval
  int watchers = 1000;    ///< watch-fanout: streams
  double rate = 20;       ///< watch-fanout: creates per second
  std::map<std::string, int> mix = {{"create", 1}, {"approve", 1}, {"get", 2}, {"list", 1}};
  bool quiet = false;        ///< no progress line
  bool mark_phases = false;  ///< "measure start/end" lines on stderr (for tests/perf/run)
};

absl::StatusOr<Options> ParseOptions(int argc, char** argv);
const char* Usage();

}  // namespace approvald::bench
