#pragma once

#include <yaml-cpp/yaml.h>

#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"

namespace approvald::handlers {

/// Durations as written in the config: absl syntax ("90s", "1h30m") plus days ("7d").
[[nodiscard]] bool ParseConfigDuration(const std::string& text, absl::Duration* out);

/// Reads typed values out of the action-type config (YAML), each error INVALID_ARGUMENT with
/// `source:line:column: key.path: what is wrong`. Used by the config parser and by the handler
/// kinds for their own keys (handler_kinds.h).
class ConfigReader {
 public:
  explicit ConfigReader(std::string source) : source_(std::move(source)) {}

  absl::Status Error(const YAML::Node& node, const std::string& path,
                     const std::string& what) const {
    const YAML::Mark mark = node.Mark();
    std::string where = source_;
    if (mark.line >= 0) absl::StrAppend(&where, ":", mark.line + 1, ":", mark.column + 1);
    return absl::InvalidArgumentError(absl::StrCat(where, ": ", path, ": ", what));
  }

  absl::Status CheckKeys(const YAML::Node& map, const std::string& path,
                         const std::set<std::string>& allowed) const {
    if (!map.IsMap()) return Error(map, path, "must be a mapping");
    for (const auto& kv : map) {
      const std::string key = kv.first.as<std::string>();
      if (!allowed.count(key)) {
        return Error(kv.first, path.empty() ? key : path + "." + key,
                     absl::StrCat("unknown key (allowed: ", absl::StrJoin(allowed, ", "), ")"));
      }
    }
    return absl::OkStatus();
  }

  absl::Status String(const YAML::Node& node, const std::string& path, std::string* out) const {
    if (!node.IsScalar()) return Error(node, path, "must be a string");
    *out = node.Scalar();
    return absl::OkStatus();
  }

  absl::Status Bool(const YAML::Node& node, const std::string& path, bool* out) const {
    if (!node.IsScalar() || !YAML::convert<bool>::decode(node, *out)) {
      return Error(node, path, "must be true or false");
    }
    return absl::OkStatus();
  }

  absl::Status Int(const YAML::Node& node, const std::string& path, int64_t* out) const {
    if (!node.IsScalar() || !absl::SimpleAtoi(node.Scalar(), out)) {
      return Error(node, path, "must be an integer");
    }
    return absl::OkStatus();
  }

  absl::Status Number(const YAML::Node& node, const std::string& path, double* out) const {
    if (!node.IsScalar() || !absl::SimpleAtod(node.Scalar(), out) || !std::isfinite(*out)) {
      return Error(node, path, "must be a number");
    }
    return absl::OkStatus();
  }

  absl::Status Duration(const YAML::Node& node, const std::string& path,
                        absl::Duration* out) const {
    if (!node.IsScalar() || !ParseConfigDuration(node.Scalar(), out) ||
        *out <= absl::ZeroDuration()) {
      return Error(node, path, "must be a positive duration such as 90s, 30m, 24h or 7d");
    }
    return absl::OkStatus();
  }

  absl::Status StringList(const YAML::Node& node, const std::string& path,
                          std::vector<std::string>* out) const {
    if (!node.IsSequence()) return Error(node, path, "must be a list of strings");
    for (size_t i = 0; i < node.size(); ++i) {
      std::string s;
      if (auto st = String(node[i], absl::StrCat(path, "[", i, "]"), &s); !st.ok()) return st;
      out->push_back(std::move(s));
    }
    return absl::OkStatus();
  }

 private:
  std::string source_;
};

/// Returns the status of `expr` if it is not OK (the config parser's early return).
#define CONFIG_TRY(expr)                                  \
  do {                                                    \
    if (absl::Status _st = (expr); !_st.ok()) return _st; \
  } while (0)

}  // namespace approvald::handlers
