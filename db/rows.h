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
  Rows(std::vector<std::string> columns, std::vector<std::vector<Param>> values, int64_t affected,
       std::vector<uint32_t> types = {})
      : columns_(std::move(columns)),
        values_(std::move(values)),
        affected_(affected),
        types_(std::move(types)) {}

  size_t size() const { return values_.size(); }
  bool empty() const { return values_.empty(); }
  /// Rows changed by INSERT/UPDATE/DELETE (PQcmdTuples), or the number returned by SELECT.
  int64_t affected() const { return affected_; }
  const std::vector<std::string>& columns() const { return columns_; }
  /// PostgreSQL type OIDs of the columns (empty if unknown).
  const std::vector<uint32_t>& types() const { return types_; }
  /// The value at (row, column index).
  const Param& At(size_t row, size_t column) const { return values_[row][column]; }

  /// Index of a column, or -1.
  int Column(absl::string_view name) const;
  /// The value at (row, column name): nullopt for NULL or a missing column.
  const Param& Get(size_t row, absl::string_view column) const;
  std::string GetString(size_t row, absl::string_view column) const;
  absl::StatusOr<int64_t> GetInt(size_t row, absl::string_view column) const;
  [[nodiscard]] bool GetBool(size_t row, absl::string_view column) const;

 private:
  std::vector<std::string> columns_;
  std::vector<std::vector<Param>> values_;
  int64_t affected_ = 0;
  std::vector<uint32_t> types_;
};

}  // namespace approvald::db
