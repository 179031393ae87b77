#include "handlers/webhook_target.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_split.h"

namespace approvald::handlers {
namespace {

constexpr size_t kMinKeyBytes = 16;

// Decodes the secrets of `text`; errors say which one (by position), never its value.
absl::Status DecodeKeys(const std::string& text, const std::string& source,
                        std::vector<std::string>* keys) {
  int n = 0;
  for (absl::string_view value :
       absl::StrSplit(text, absl::ByAnyChar(" \t\r\n"), absl::SkipEmpty())) {
    ++n;
    std::string key;
    if (absl::ConsumePrefix(&value, "whsec_")) {
      if (!absl::Base64Unescape(value, &key)) {
        return absl::InvalidArgumentError(
            absl::StrCat(source, ": secret ", n, " starts with whsec_ but is not base64"));
      }
    } else {
      key = std::string(value);
    }
    if (key.size() < kMinKeyBytes) {
      return absl::InvalidArgumentError(
          absl::StrCat(source, ": secret ", n, " is shorter than ", kMinKeyBytes, " bytes"));
    }
    keys->push_back(std::move(key));
  }
  if (keys->empty()) return absl::InvalidArgumentError(absl::StrCat(source, " is empty"));
  return absl::OkStatus();
}

}  // namespace

absl::Status ParseWebhookTarget(const ConfigReader& r, const YAML::Node& entry,
                                const std::string& path, WebhookTarget* out) {
  // A Slack incoming-webhook URL is itself a secret: it may come from the environment.
  if (entry["url"].IsDefined() == entry["url_env"].IsDefined()) {
    return r.Error(entry, path, "needs exactly one of url or url_env (an environment variable)");
  }
  std::string url_key = "url";
  if (const YAML::Node env = entry["url_env"]) {
    url_key = "url_env";
    std::string name;
    CONFIG_TRY(r.String(env, path + ".url_env", &name));
    const char* value = std::getenv(name.c_str());
    if (value == nullptr) {
      return r.Error(env, path + ".url_env", "environment variable " + name + " is not set");
    }
    out->url = value;
  } else {
    CONFIG_TRY(r.String(entry["url"], path + ".url", &out->url));
  }
  const bool http = absl::StartsWith(out->url, "http://");
  const bool https = absl::StartsWith(out->url, "https://");
  if ((!http && !https) || out->url.size() <= (https ? 8u : 7u) ||
      out->url.find_first_of(" \t\r\n") != std::string::npos) {
    return r.Error(entry[url_key], path + "." + url_key, "must be an http:// or https:// URL");
  }
  if (entry["secret_env"].IsDefined() == entry["secret_file"].IsDefined()) {
    return r.Error(entry, path,
                   "needs exactly one of secret_env (an environment variable) or secret_file "
                   "(a file) holding the signing secret");
  }
  std::string text;
  std::string source;
  if (const YAML::Node env = entry["secret_env"]) {
    std::string name;
    CONFIG_TRY(r.String(env, path + ".secret_env", &name));
    const char* value = std::getenv(name.c_str());
    source = absl::StrCat("environment variable ", name);
    if (value == nullptr) return r.Error(env, path + ".secret_env", source + " is not set");
    text = value;
  } else {
    const YAML::Node file = entry["secret_file"];
    std::string name;
    CONFIG_TRY(r.String(file, path + ".secret_file", &name));
    std::ifstream in(name);
    source = absl::StrCat("file ", name);
    if (!in) return r.Error(file, path + ".secret_file", "cannot read " + source);
    std::stringstream buffer;
    buffer << in.rdbuf();
    text = buffer.str();
  }
  if (absl::Status st = DecodeKeys(text, source, &out->keys); !st.ok()) {
    return r.Error(entry, path, std::string(st.message()));
  }
  if (entry["timeout"]) {
    CONFIG_TRY(r.Duration(entry["timeout"], path + ".timeout", &out->timeout));
    if (out->timeout > absl::Minutes(5)) {
      return r.Error(entry["timeout"], path + ".timeout", "must be at most 5m");
    }
  }
  if (entry["ca_file"]) {
    CONFIG_TRY(r.String(entry["ca_file"], path + ".ca_file", &out->ca_file));
    if (!std::ifstream(out->ca_file)) {
      return r.Error(entry["ca_file"], path + ".ca_file", "cannot read " + out->ca_file);
    }
  }
  return absl::OkStatus();
}

}  // namespace approvald::handlers
