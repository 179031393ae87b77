#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "handlers/action_handler.h"
#include "handlers/sql_template.h"

namespace approvald::handlers {

/// How many rows a statement must affect (or return).
struct ExpectRows {
  enum class Kind { kAny, kExactly, kAtLeast, kAtMost };
  Kind kind = Kind::kAny;
  int64_t n = 0;
  bool Matches(int64_t rows) const;
  std::string Describe() const;
};

/// One operator-written statement of a `sql` action.
struct SqlStatementSpec {
  std::string sql;  ///< with :name placeholders
  ExpectRows expect;
};

/// The `sql` handler kind: the configured statements run in order inside the approval's
/// transaction. `:name` binds the parameter `name` of action_data, plus :approval_id,
/// :requested_by, :decided_by and :action_data (jsonb). Values are always bound parameters.
/// A row-count mismatch or any database error fails the action (FAILED_PRECONDITION, or the
/// database error's own code); the store rolls back everything the action wrote.
class SqlHandler final : public ActionHandler {
 public:
  static constexpr size_t kMaxResultRows = 100;

  /// INVALID_ARGUMENT naming the statement if a placeholder is malformed or names neither a
  /// declared parameter (`parameters`) nor a built-in.
  static absl::StatusOr<std::shared_ptr<SqlHandler>> Create(
      const std::string& action_type, const std::vector<SqlStatementSpec>& statements,
      const std::vector<std::string>& parameters);

  absl::Status Validate(const google::protobuf::Struct& action_data) const override;
  absl::StatusOr<google::protobuf::Struct> Execute(db::Tx& tx,
                                                   const db::ApprovalRecord& approval) override;
  std::vector<db::Query> Statements() const override;

 private:
  struct Compiled {
    std::string name;  ///< prepared statement name, derived from the text
    CompiledSql sql;
    ExpectRows expect;
  };
  explicit SqlHandler(std::string action_type) : action_type_(std::move(action_type)) {}

  std::string action_type_;
  std::vector<Compiled> statements_;
};

}  // namespace approvald::handlers
