#pragma once

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/descriptor.h"

namespace approvald::server {

/// One `google.api.http` binding of a method: a verb and a path template of literal and
/// `{field}` segments, optionally ending in `:verb` (AIP-136 custom methods).
struct HttpRoute {
  std::string verb;                   ///< GET, POST, ...
  std::vector<std::string> segments;  ///< literal, or a field name for `{field}`
  std::vector<bool> is_field;         ///< per segment
  std::string custom;                 ///< after the `:` of the last segment; may be empty
  std::string body;                   ///< "", "*" or a field name
  std::string pattern;                ///< as written in the proto
  const google::protobuf::MethodDescriptor* method = nullptr;
};

struct RouteMatch {
  const HttpRoute* route = nullptr;
  std::vector<std::pair<std::string, std::string>> bindings;  ///< field, segment value
};

/// The HTTP routes of a gRPC service, read from its methods' `google.api.http` options.
class HttpRoutes {
 public:
  /// INVALID_ARGUMENT for a template this gateway does not serve (nested or multi-segment
  /// variables, a field that is not a string of the request).
  static absl::StatusOr<HttpRoutes> ForServices(
      const std::vector<const google::protobuf::ServiceDescriptor*>& services);

  /// The route for `verb` on `path`; NOT_FOUND when no route has that path, and
  /// UNIMPLEMENTED with the verbs allowed (comma-separated, in the message) when others do.
  absl::StatusOr<RouteMatch> Match(absl::string_view verb, absl::string_view path) const;

  const std::vector<HttpRoute>& routes() const { return routes_; }

 private:
  absl::Status Add(const google::protobuf::ServiceDescriptor& service);

  std::vector<HttpRoute> routes_;
};

}  // namespace approvald::server
