#include "handlers/sql_template.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace approvald::handlers {
namespace {

bool IsIdentStart(char c) { return absl::ascii_isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool IsIdentChar(char c) { return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_'; }

// Copies a quoted run ('...' or "...", with doubled quotes) starting at `i`; returns the end.
size_t SkipQuoted(absl::string_view s, size_t i, char quote) {
  for (size_t j = i + 1; j < s.size(); ++j) {
    if (s[j] == quote) {
      if (j + 1 < s.size() && s[j + 1] == quote) {
        ++j;
        continue;
      }
      return j + 1;
    }
  }
  return s.size();
}

}  // namespace

absl::StatusOr<CompiledSql> CompileNamedPlaceholders(absl::string_view s) {
  CompiledSql out;
  size_t i = 0;
  while (i < s.size()) {
    const char c = s[i];
    size_t end = i + 1;
    if (c == '\'' || c == '"') {
      end = SkipQuoted(s, i, c);
    } else if (c == '-' && i + 1 < s.size() && s[i + 1] == '-') {
      end = std::min(s.find('\n', i), s.size());
    } else if (c == '/' && i + 1 < s.size() && s[i + 1] == '*') {
      const size_t close = s.find("*/", i + 2);
      end = close == absl::string_view::npos ? s.size() : close + 2;
    } else if (c == '$' && i + 1 < s.size() &&
               absl::ascii_isdigit(static_cast<unsigned char>(s[i + 1]))) {
      return absl::InvalidArgumentError(
          "positional parameters ($1) are not allowed: use :name placeholders");
    } else if (c == '$') {
      // A dollar-quoted string: $tag$ ... $tag$.
      size_t j = i + 1;
      while (j < s.size() && IsIdentChar(s[j])) ++j;
      if (j < s.size() && s[j] == '$') {
        const absl::string_view tag = s.substr(i, j - i + 1);
        const size_t close = s.find(tag, j + 1);
        end = close == absl::string_view::npos ? s.size() : close + tag.size();
      }
    } else if (c == ':' && i + 1 < s.size() && s[i + 1] == ':') {
      end = i + 2;  // a cast
    } else if (c == ':' && i + 1 < s.size() && IsIdentStart(s[i + 1])) {
      size_t j = i + 1;
      while (j < s.size() && IsIdentChar(s[j])) ++j;
      const std::string name(s.substr(i + 1, j - i - 1));
      auto it = std::find(out.names.begin(), out.names.end(), name);
      size_t index = static_cast<size_t>(it - out.names.begin());
      if (it == out.names.end()) out.names.push_back(name);
      absl::StrAppend(&out.text, "$", index + 1);
      i = j;
      continue;
    }
    out.text.append(s.data() + i, end - i);
    i = end;
  }
  return out;
}

}  // namespace approvald::handlers
