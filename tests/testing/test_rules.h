#pragma once

#include <atomic>
#include <functional>
#include <optional>
#include <string>
#include <utility>

#include "db/approval_store.h"

namespace approvald::testing {

/// db::DecisionRules for store tests: every decision is allowed, an approve runs `execute`, and
/// the changes the store reports are counted.
class TestRules final : public db::DecisionRules {
 public:
  using ExecuteFn = std::function<absl::StatusOr<std::string>(db::Tx&, const db::ApprovalRecord&)>;

  explicit TestRules(ExecuteFn execute, std::optional<db::DecideAtOnce> at_once = std::nullopt)
      : execute_(std::move(execute)), at_once_(std::move(at_once)) {}

  absl::StatusOr<db::DecisionPolicy> Authorize(const db::ApprovalRecord&) const override {
    return db::DecisionPolicy{required_approvals_};
  }
  /// Approvals need this many distinct votes.
  void SetRequiredApprovals(int n) { required_approvals_ = n; }
  absl::StatusOr<std::string> Execute(db::Tx& tx, const db::ApprovalRecord& a) const override {
    return execute_(tx, a);
  }
  std::optional<db::DecideAtOnce> AtOnce() const override { return at_once_; }
  std::optional<db::ExternalExecution> External(const db::ApprovalRecord&) const override {
    return external_;
  }
  /// Approvals are enqueued for external workers (with these settings) instead of executed.
  void SetExternal(std::optional<db::ExternalExecution> external) { external_ = external; }
  void Changed(const std::string&, const std::string&) const override { changes_.fetch_add(1); }

  /// How many changes the store reported.
  int changes() const { return changes_.load(); }

 private:
  const ExecuteFn execute_;
  const std::optional<db::DecideAtOnce> at_once_;
  std::optional<db::ExternalExecution> external_;
  int required_approvals_ = 1;
  mutable std::atomic<int> changes_{0};
};

}  // namespace approvald::testing
