#include "server/ops/metrics.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"

namespace approvald::server {
namespace {

std::string Label(const std::string& value) {
  return absl::StrReplaceAll(value, {{"\\", "\\\\"}, {"\"", "\\\""}, {"\n", "\\n"}});
}

std::string Number(double v) { return absl::StrCat(v); }

}  // namespace

void Metrics::Histogram::Observe(double v) {
  for (size_t i = 0; i < kBuckets.size(); ++i) {
    if (v <= kBuckets[i]) ++buckets[i];
  }
  ++count;
  sum += v;
}

void Metrics::RecordRpc(const std::string& method, const std::string& code, double seconds) {
  std::lock_guard<std::mutex> lock(mu_);
  ++rpcs_[{method, code}];
  rpc_latency_[method].Observe(seconds);
}

void Metrics::RecordCreated(const std::string& action_type) {
  std::lock_guard<std::mutex> lock(mu_);
  ++created_[action_type];
}

void Metrics::RecordDecided(const std::string& action_type, const std::string& status, uint64_t n) {
  std::lock_guard<std::mutex> lock(mu_);
  decided_[{action_type, status}] += n;
}

void Metrics::RecordHandler(const std::string& action_type, double seconds) {
  std::lock_guard<std::mutex> lock(mu_);
  handler_[action_type].Observe(seconds);
}

void Metrics::SetGauges(GaugeFn gauges) {
  std::lock_guard<std::mutex> lock(mu_);
  gauges_ = std::move(gauges);
}

void Metrics::AddText(std::function<std::string()> text) {
  std::lock_guard<std::mutex> lock(mu_);
  texts_.push_back(std::move(text));
}

std::string Metrics::Render() const {
  GaugeFn gauges;
  std::vector<std::function<std::string()>> texts;
  std::string out;
  {
    std::lock_guard<std::mutex> lock(mu_);
    gauges = gauges_;
    texts = texts_;
    out +=
        "# HELP approvald_rpcs_total RPCs answered, by method and gRPC code.\n"
        "# TYPE approvald_rpcs_total counter\n";
    for (const auto& [key, n] : rpcs_) {
      absl::StrAppend(&out, "approvald_rpcs_total{method=\"", Label(key.first), "\",code=\"",
                      Label(key.second), "\"} ", n, "\n");
    }
    auto histogram = [&out](const std::string& name, const std::string& help,
                            const std::string& label, const std::map<std::string, Histogram>& h) {
      absl::StrAppend(&out, "# HELP ", name, " ", help, "\n# TYPE ", name, " histogram\n");
      for (const auto& [key, hist] : h) {
        const std::string l = absl::StrCat(label, "=\"", Label(key), "\"");
        for (size_t i = 0; i < kBuckets.size(); ++i) {
          absl::StrAppend(&out, name, "_bucket{", l, ",le=\"", Number(kBuckets[i]), "\"} ",
                          hist.buckets[i], "\n");
        }
        absl::StrAppend(&out, name, "_bucket{", l, ",le=\"+Inf\"} ", hist.count, "\n", name,
                        "_sum{", l, "} ", Number(hist.sum), "\n", name, "_count{", l, "} ",
                        hist.count, "\n");
      }
    };
    histogram("approvald_rpc_duration_seconds", "RPC latency on the server.", "method",
              rpc_latency_);
    histogram("approvald_handler_duration_seconds",
              "Time the action handler ran inside the decision transaction.", "action_type",
              handler_);
    out +=
        "# HELP approvald_approvals_created_total Approvals created, by action type.\n"
        "# TYPE approvald_approvals_created_total counter\n";
    for (const auto& [type, n] : created_) {
      absl::StrAppend(&out, "approvald_approvals_created_total{action_type=\"", Label(type), "\"} ",
                      n, "\n");
    }
    out +=
        "# HELP approvald_approvals_decided_total Approvals that reached a final status "
        "in this process (decisions and expiries), by action type and status.\n"
        "# TYPE approvald_approvals_decided_total counter\n";
    for (const auto& [key, n] : decided_) {
      absl::StrAppend(&out, "approvald_approvals_decided_total{action_type=\"", Label(key.first),
                      "\",status=\"", Label(key.second), "\"} ", n, "\n");
    }
  }
  if (gauges) {
    for (const auto& [name, value] : gauges()) {
      absl::StrAppend(
          &out, "# TYPE ", name,
          name.size() > 6 && name.substr(name.size() - 6) == "_total" ? " counter" : " gauge", "\n",
          name, " ", Number(value), "\n");
    }
  }
  for (const auto& text : texts) out += text();
  return out;
}

}  // namespace approvald::server
