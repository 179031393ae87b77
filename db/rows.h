#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace approvald::db {

/// One statement parameter in PostgreSQL text format; nullopt is SQL NULL.
using Param = std::optional<std::string>;
using Params = std::vector<Param>;

/// A fully read result set, detached from libpq. Values are in PostgreSQL text format.
class Rows {
 public:
  Rows() = default;
  Rows(std::vector<std::string> columns, std::vector<std::vector<Param>> values, int64_t affected)
      : columns_(std::move(columns)), values_(std::move(values)), affected_(affected) {}

  size_t size() const { return values_.size(); }
  bool empty() const { return values_.empty(); }
  /// Rows changed by INSERT/UPDATE/DELETE (PQcmdTuples), or the number returned by SELECT.
  int64_t affected() const { return affected_; }
  const std::vector<std::string>& columns() const { return columns_; }

  /// Index of a column, or -1.
  int Column(absl::string_view name) const;
  /// The value at (row, column name): nullopt for NULL or a missing column.
  const Param& Get(size_t row, absl::string_view column) const;
  std::string GetString(size_t row, absl::string_view column) const;
  absl::StatusOr<int64_t> GetInt(size_t row, absl::string_view column) const;
  bool GetBool(size_t row, absl::string_view column) const;

 private:
  std::vector<std::string> columns_;
  std::vector<std::vector<Param>> values_;
  int64_t affected_ = 0;
};

}  // namespace approvald::db
