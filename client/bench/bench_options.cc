#include "client/bench/bench_options.h"

#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "client/cli_args.h"

namespace approvald::bench {
namespace {

const std::set<std::string> kModes = {"create",    "approve", "reject",      "execute",
                                      "contended", "mixed",   "watch-fanout"};

absl::Status Invalid(const std::string& flag, const std::string& why) {
  return absl::InvalidArgumentError(absl::StrCat("--", flag, ": ", why));
}

template <typename T>
absl::Status ReadNumber(const client::CliArgs& args, const std::string& flag, T& out, T min) {
  std::optional<std::string> v = args.Get(flag);
  if (!v) return absl::OkStatus();
  T parsed{};
  bool ok = false;
  if constexpr (std::is_same_v<T, double>) {
    ok = absl::SimpleAtod(*v, &parsed);
  } else {
    ok = absl::SimpleAtoi(*v, &parsed);
  }
  if (!ok || parsed < min) return Invalid(flag, absl::StrCat("must be a number >= ", min));
  out = parsed;
  return absl::OkStatus();
}

}  // namespace

const char* Usage() {
  return R"(usage: approval-bench [options]
Load generator for approvald (async gRPC client). Modes:
  create        CreateApproval as fast as --concurrency allows
  approve       Approve approvals created beforehand (outside the timed window), each once
  reject        the same with Reject
  contended     --racers Approves race for each approval; time until every racer is answered
  mixed         create/approve/get/list in the proportions of --mix
  watch-fanout  --watchers WatchApprovals streams; creates at --rate per second; time from
                the create call to each delivery
  execute       approve approvals of an external --action-type at --concurrency while
                --workers workers claim (long-polling) and complete their executions; reports
                both rates and the time from each Approve's answer to its execution's claim
Options:
  --target HOST:PORT        approvald (127.0.0.1:50051)
  --token TOKEN             the deciding caller's bearer token (or APPROVALD_TOKEN)
  --requester-token TOKEN   creates the approvals (default: --token)
  --mode MODE               approve
  --concurrency N           calls in flight (16)
  --duration S --warmup S   measured and warm-up seconds (10, 2)
  --action-type NAME        noop
  --payload-bytes N         size of a string field in action_data (0)
  --channels N              HTTP/2 connections (1)
  --deadline S              every call's deadline in seconds, as clients set one (5)
  --approvals N             approve/reject: approvals to create beforehand (estimated)
  --racers K                contended: racers per approval (64)
  --watchers W --rate R     watch-fanout: streams (1000), creates per second (20)
  --workers N               execute: claim-and-complete loops (16)
  --worker-token TOKEN      execute: the workers' token (an executor role; default: --token)
  --mix create=1,approve=1,get=2,list=1
  --json                    one JSON object on stdout
  --quiet                   no progress line on stderr
  --mark-phases             "approval-bench: measure start|end" on stderr at the window's edges
)";
}

absl::StatusOr<Options> ParseOptions(int argc, char** argv) {
  const client::CliArgs args =
      client::CliArgs::Parse(argc, argv, {"json", "quiet", "help", "mark-phases"});
  if (args.Has("help")) return absl::CancelledError(Usage());
  if (!args.positional.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("unexpected argument ", args.positional[0]));
  }
  static const std::set<std::string> kKnown = {"target",      "token",       "requester-token",
                                               "mode",        "concurrency", "duration",
                                               "warmup",      "action-type", "payload-bytes",
                                               "json",        "channels",    "approvals",
                                               "racers",      "watchers",    "rate",
                                               "mix",         "quiet",       "help",
                                               "mark-phases", "workers",     "worker-token",
                                               "deadline"};
  for (const auto& [name, value] : args.options) {
    if (!kKnown.count(name)) return absl::InvalidArgumentError("unknown option --" + name);
  }
  Options o;
  if (auto v = args.Get("target")) o.target = *v;
  if (const char* env = std::getenv("APPROVALD_TOKEN")) o.token = env;
  if (auto v = args.Get("token")) o.token = *v;
  o.requester_token = o.token;
  if (auto v = args.Get("requester-token")) o.requester_token = *v;
  o.worker_token = o.token;
  if (auto v = args.Get("worker-token")) o.worker_token = *v;
  if (auto v = args.Get("mode")) o.mode = *v;
  if (!kModes.count(o.mode)) return Invalid("mode", "unknown mode " + o.mode);
  if (auto v = args.Get("action-type")) o.action_type = *v;
  o.json = args.Has("json");
  o.quiet = args.Has("quiet");
  o.mark_phases = args.Has("mark-phases");
  if (auto st = ReadNumber(args, "concurrency", o.concurrency, 1); !st.ok()) return st;
  if (auto st = ReadNumber(args, "duration", o.duration_s, 0.1); !st.ok()) return st;
  if (auto st = ReadNumber(args, "warmup", o.warmup_s, 0.0); !st.ok()) return st;
  if (auto st = ReadNumber(args, "payload-bytes", o.payload_bytes, 0); !st.ok()) return st;
  if (auto st = ReadNumber(args, "channels", o.channels, 1); !st.ok()) return st;
  if (auto st = ReadNumber(args, "deadline", o.deadline_s, 0.01); !st.ok()) return st;
  if (auto st = ReadNumber(args, "approvals", o.approvals, 0); !st.ok()) return st;
  if (auto st = ReadNumber(args, "racers", o.racers, 1); !st.ok()) return st;
  if (auto st = ReadNumber(args, "workers", o.workers, 1); !st.ok()) return st;
  if (auto st = ReadNumber(args, "watchers", o.watchers, 1); !st.ok()) return st;
  if (auto st = ReadNumber(args, "rate", o.rate, 0.1); !st.ok()) return st;
  if (auto v = args.Get("mix")) {
    o.mix.clear();
    for (absl::string_view part : absl::StrSplit(*v, ',', absl::SkipEmpty())) {
      std::pair<std::string, std::string> kv = absl::StrSplit(part, absl::MaxSplits('=', 1));
      int weight = 0;
      if (!absl::SimpleAtoi(kv.second, &weight) || weight < 0) {
        return Invalid("mix", absl::StrCat("bad weight in ", part));
      }
      if (kv.first != "create" && kv.first != "approve" && kv.first != "get" &&
          kv.first != "list") {
        return Invalid("mix", "operations are create, approve, get, list");
      }
      o.mix[kv.first] = weight;
    }
    int total = 0;
    for (const auto& [op, w] : o.mix) total += w;
    if (total == 0) return Invalid("mix", "all weights are zero");
  }
  if (o.token.empty()) return Invalid("token", "required (or set APPROVALD_TOKEN)");
  return o;
}

}  // namespace approvald::bench
