#include "client/cli_args.h"

#include <algorithm>

namespace approvald::client {

CliArgs CliArgs::Parse(int argc, char** argv, const std::vector<std::string>& boolean) {
  CliArgs out;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.size() < 3 || arg.rfind("--", 0) != 0) {
      out.positional.push_back(arg);
      continue;
    }
    std::string name = arg.substr(2);
    if (auto eq = name.find('='); eq != std::string::npos) {
      out.options[name.substr(0, eq)] = name.substr(eq + 1);
    } else if (std::find(boolean.begin(), boolean.end(), name) != boolean.end() || i + 1 >= argc) {
      out.options[name] = "true";
    } else {
      out.options[name] = argv[++i];
    }
  }
  return out;
}

std::optional<std::string> CliArgs::Get(const std::string& name) const {
  auto it = options.find(name);
  if (it == options.end()) return std::nullopt;
  return it->second;
}

}  // namespace approvald::client
