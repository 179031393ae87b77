#include "client/bench/report.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace approvald::bench {
namespace {

bool IsOk(const std::string& answer) { return answer == "OK" || absl::EndsWith(answer, " OK"); }

double PerSecond(const ModeResult& r) {
  return r.loop.window_s > 0 ? static_cast<double>(r.loop.summary.calls) / r.loop.window_s : 0;
}

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out + "\"";
}

}  // namespace

std::string TextReport(const Options& o, const ModeResult& r) {
  const auto& s = r.loop.summary;
  std::string out =
      absl::StrFormat("mode %s, concurrency %d, %.1f s measured after %.1f s warm-up, target %s\n",
                      o.mode, o.concurrency, r.loop.window_s, o.warmup_s, o.target);
  absl::StrAppendFormat(&out, "%-14s %lld (%.1f/s)\n",
                        o.mode == "watch-fanout" ? "deliveries" : "calls",
                        static_cast<long long>(s.calls), PerSecond(r));
  absl::StrAppendFormat(&out,
                        "latency ms     p50 %.2f  p90 %.2f  p99 %.2f  p99.9 %.2f  max %.2f  "
                        "mean %.2f\n",
                        s.p50_ms, s.p90_ms, s.p99_ms, s.p999_ms, s.max_ms, s.mean_ms);
  out += "answers       ";
  for (const auto& [answer, n] : s.answers) absl::StrAppend(&out, " ", answer, "=", n);
  out += "\n";
  for (const auto& [name, value] : r.extra) absl::StrAppendFormat(&out, "%-14s %g\n", name, value);
  for (const auto& note : r.notes) absl::StrAppend(&out, "note: ", note, "\n");
  return out;
}

std::string JsonReport(const Options& o, const ModeResult& r) {
  const auto& s = r.loop.summary;
  std::string answers, errors;
  for (const auto& [answer, n] : s.answers) {
    absl::StrAppend(&answers, answers.empty() ? "" : ",", JsonString(answer), ":", n);
    if (!IsOk(answer))
      absl::StrAppend(&errors, errors.empty() ? "" : ",", JsonString(answer), ":", n);
  }
  std::string out = absl::StrFormat(
      "{\"mode\":%s,\"concurrency\":%d,\"duration_s\":%.3f,\"calls\":%lld,\"calls_per_s\":%.1f,"
      "\"p50_ms\":%.3f,\"p90_ms\":%.3f,\"p99_ms\":%.3f,\"p999_ms\":%.3f,\"max_ms\":%.3f,"
      "\"mean_ms\":%.3f,\"answers\":{%s},\"errors\":{%s},\"ran_out\":%s",
      JsonString(o.mode), o.concurrency, r.loop.window_s, static_cast<long long>(s.calls),
      PerSecond(r), s.p50_ms, s.p90_ms, s.p99_ms, s.p999_ms, s.max_ms, s.mean_ms, answers, errors,
      r.loop.ran_out ? "true" : "false");
  for (const auto& [name, value] : r.extra) absl::StrAppendFormat(&out, ",\"%s\":%g", name, value);
  std::string notes;
  for (const auto& note : r.notes)
    absl::StrAppend(&notes, notes.empty() ? "" : ",", JsonString(note));
  absl::StrAppend(&out, ",\"notes\":[", notes, "]}");
  return out;
}

}  // namespace approvald::bench
