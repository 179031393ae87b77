#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace approvald::handlers {

/// An operator's statement with `:name` placeholders rewritten to `$n` parameters.
struct CompiledSql {
  std::string text;                ///< with $1..$n
  std::vector<std::string> names;  ///< names[i] binds $(i+1); a name repeated reuses its $n
};

/// Rewrites `:name` placeholders ([A-Za-z_][A-Za-z0-9_]*) to `$n`. String literals, quoted
/// identifiers, dollar-quoted strings, comments and `::` casts are left alone. A literal `$n`
/// in the text is INVALID_ARGUMENT (values are bound only through names).
absl::StatusOr<CompiledSql> CompileNamedPlaceholders(absl::string_view sql);

}  // namespace approvald::handlers
