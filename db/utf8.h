#pragma once

#include "absl/strings/string_view.h"

namespace approvald::db {

/// The offset of the first byte that is not part of strict UTF-8 (no overlong forms, UTF-16
/// surrogates or code points above U+10FFFF), or absl::string_view::npos if there is none.
/// Text that ends up in proto3 `string` fields must pass.
[[nodiscard]] size_t FirstInvalidUtf8(absl::string_view text);
[[nodiscard]] inline bool IsValidUtf8(absl::string_view text) {
  return FirstInvalidUtf8(text) == absl::string_view::npos;
}

}  // namespace approvald::db
