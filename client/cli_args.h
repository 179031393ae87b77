#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace approvald::client {

/// `--name value`, `--name=value` and bare `--flag` options plus positional words, in any order.
/// Names listed in `boolean` never take a value.
struct CliArgs {
  std::vector<std::string> positional;
  std::map<std::string, std::string> options;

  static CliArgs Parse(int argc, char** argv, const std::vector<std::string>& boolean);
  std::optional<std::string> Get(const std::string& name) const;
  bool Has(const std::string& name) const { return options.count(name) > 0; }
};

}  // namespace approvald::client
