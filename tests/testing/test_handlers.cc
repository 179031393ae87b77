#include "tests/testing/test_handlers.h"

#include "db/query.h"
#include "db/status_macros.h"
#include "handlers/noop_handler.h"

namespace approvald::testing {
namespace {

namespace pb = google::protobuf;

constexpr db::Query kInsertEffect{
    "test_insert_effect", "INSERT INTO test_effects (approval_id, note) VALUES ($1::uuid, $2)"};
// A real serialization failure (SQLSTATE 40001) from the database on every odd call: the
// sequence is not transactional, so the retried transaction sees the next value.
constexpr db::Query kConflictOnce{"test_conflict_once",
                                  "SELECT CASE WHEN nextval('test_conflict_probe') % 2 = 1 THEN "
                                  "approvald_test_raise_serialization_failure() END"};
constexpr db::Query kViolate{"test_violate",
                             "INSERT INTO test_effects (approval_id) VALUES (NULL)"};

enum class Mode { kEffect, kFail, kTransient, kSqlError, kUnknown, kConflictOnce };

class TestHandler final : public handlers::ActionHandler {
 public:
  TestHandler(Mode mode, std::shared_ptr<std::atomic<int>> executions)
      : mode_(mode), executions_(std::move(executions)) {}

  absl::Status Validate(const pb::Struct& data) const override {
    auto it = data.fields().find("reject_me");
    if (it != data.fields().end()) return absl::InvalidArgumentError("reject_me is not allowed");
    return absl::OkStatus();
  }

  absl::StatusOr<pb::Struct> Execute(db::Tx& tx, const db::ApprovalRecord& a) override {
    if (executions_) executions_->fetch_add(1);
    switch (mode_) {
      case Mode::kTransient:
        return absl::UnavailableError("downstream is briefly unavailable");
      case Mode::kSqlError:
        RETURN_IF_ERROR(tx.Exec(kViolate, {}).status());
        break;
      case Mode::kUnknown:
        return absl::UnknownError("the payment provider answered something unexpected");
      case Mode::kConflictOnce:
        RETURN_IF_ERROR(tx.Exec(kConflictOnce, {}).status());
        RETURN_IF_ERROR(tx.Exec(kInsertEffect, {a.id, a.summary}).status());
        break;
      case Mode::kEffect:
      case Mode::kFail:
        RETURN_IF_ERROR(tx.Exec(kInsertEffect, {a.id, a.summary}).status());
        break;
    }
    if (mode_ == Mode::kFail) return absl::FailedPreconditionError("insufficient funds");
    pb::Struct result;
    (*result.mutable_fields())["inserted"].set_number_value(1);
    return result;
  }

 private:
  Mode mode_;
  std::shared_ptr<std::atomic<int>> executions_;
};

// Writes nothing and always answers {"fixed": true}, so it may be decided in one statement
// without a call to Execute, which counts the calls that do happen.
class FixedResultHandler final : public handlers::ActionHandler {
 public:
  explicit FixedResultHandler(std::shared_ptr<std::atomic<int>> executions)
      : executions_(std::move(executions)) {}
  absl::Status Validate(const pb::Struct&) const override { return absl::OkStatus(); }
  absl::StatusOr<pb::Struct> Execute(db::Tx&, const db::ApprovalRecord&) override {
    if (executions_) executions_->fetch_add(1);
    return *FixedResult();
  }
  std::optional<pb::Struct> FixedResult() const override {
    pb::Struct result;
    (*result.mutable_fields())["fixed"].set_bool_value(true);
    return result;
  }

 private:
  std::shared_ptr<std::atomic<int>> executions_;
};

}  // namespace

std::shared_ptr<handlers::HandlerRegistry> MakeTestRegistry(
    std::shared_ptr<std::atomic<int>> executions) {
  auto registry = std::make_shared<handlers::HandlerRegistry>();
  (void)registry->Register("noop", std::make_shared<handlers::NoopHandler>());
  (void)registry->Register("test.effect", std::make_shared<TestHandler>(Mode::kEffect, executions));
  (void)registry->Register("test.fail", std::make_shared<TestHandler>(Mode::kFail, executions));
  (void)registry->Register("test.transient",
                           std::make_shared<TestHandler>(Mode::kTransient, executions));
  (void)registry->Register("test.sqlerror",
                           std::make_shared<TestHandler>(Mode::kSqlError, executions));
  (void)registry->Register("test.unknown",
                           std::make_shared<TestHandler>(Mode::kUnknown, executions));
  (void)registry->Register("test.conflict_once",
                           std::make_shared<TestHandler>(Mode::kConflictOnce, executions));
  (void)registry->Register("test.fixed", std::make_shared<FixedResultHandler>(executions));
  return registry;
}

}  // namespace approvald::testing
