#include "server/gateway/http_routes.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "db/status_macros.h"
#include "google/api/annotations.pb.h"

namespace approvald::server {
namespace {

namespace pb = google::protobuf;

absl::Status Unsupported(const pb::MethodDescriptor& method, const std::string& pattern,
                         absl::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat(method.full_name(), ": HTTP template \"", pattern, "\" ", why));
}

absl::StatusOr<HttpRoute> Parse(const pb::MethodDescriptor& method, std::string verb,
                                const std::string& pattern, const std::string& body) {
  HttpRoute route;
  route.verb = std::move(verb);
  route.pattern = pattern;
  route.body = body;
  route.method = &method;
  if (pattern.size() < 2 || pattern[0] != '/') return Unsupported(method, pattern, "is not a path");
  std::string path = pattern.substr(1);
  if (const size_t colon = path.rfind(':'); colon != std::string::npos &&
                                            path.find('/', colon) == std::string::npos &&
                                            path.find('}', colon) == std::string::npos) {
    route.custom = path.substr(colon + 1);
    path.resize(colon);
  }
  for (absl::string_view segment : absl::StrSplit(path, '/')) {
    if (segment.empty()) return Unsupported(method, pattern, "has an empty segment");
    const bool field = segment.front() == '{';
    if (field) {
      if (segment.back() != '}' || segment.find_first_of("=*./", 1) != absl::string_view::npos) {
        return Unsupported(method, pattern, "has a variable other than {field}");
      }
      segment = segment.substr(1, segment.size() - 2);
      const pb::FieldDescriptor* f = method.input_type()->FindFieldByName(std::string(segment));
      if (f == nullptr || f->is_repeated() || f->type() != pb::FieldDescriptor::TYPE_STRING) {
        return Unsupported(method, pattern, "binds a field that is not a string of the request");
      }
    } else if (segment.find_first_of("{}*=") != absl::string_view::npos) {
      return Unsupported(method, pattern, "has a wildcard");
    }
    route.segments.emplace_back(segment);
    route.is_field.push_back(field);
  }
  if (!body.empty() && body != "*") return Unsupported(method, pattern, "has a body other than *");
  return route;
}

}  // namespace

absl::StatusOr<HttpRoutes> HttpRoutes::ForServices(
    const std::vector<const pb::ServiceDescriptor*>& services) {
  HttpRoutes routes;
  for (const pb::ServiceDescriptor* service : services) {
    RETURN_IF_ERROR(routes.Add(*service));
  }
  return routes;
}

absl::Status HttpRoutes::Add(const pb::ServiceDescriptor& service) {
  for (int i = 0; i < service.method_count(); ++i) {
    const pb::MethodDescriptor& method = *service.method(i);
    if (!method.options().HasExtension(google::api::http)) continue;
    const google::api::HttpRule& rule = method.options().GetExtension(google::api::http);
    std::pair<const char*, const std::string*> pattern;
    switch (rule.pattern_case()) {
      case google::api::HttpRule::kGet:
        pattern = {"GET", &rule.get()};
        break;
      case google::api::HttpRule::kPost:
        pattern = {"POST", &rule.post()};
        break;
      case google::api::HttpRule::kPut:
        pattern = {"PUT", &rule.put()};
        break;
      case google::api::HttpRule::kDelete:
        pattern = {"DELETE", &rule.delete_()};
        break;
      case google::api::HttpRule::kPatch:
        pattern = {"PATCH", &rule.patch()};
        break;
      default:
        return absl::InvalidArgumentError(
            absl::StrCat(method.full_name(), ": unsupported google.api.http pattern"));
    }
    absl::StatusOr<HttpRoute> route = Parse(method, pattern.first, *pattern.second, rule.body());
    if (!route.ok()) return route.status();
    routes_.push_back(std::move(*route));
  }
  return absl::OkStatus();
}

absl::StatusOr<RouteMatch> HttpRoutes::Match(absl::string_view verb, absl::string_view path) const {
  std::vector<std::string> allowed;
  if (path.empty() || path[0] != '/') return absl::NotFoundError("no such path");
  const std::vector<absl::string_view> parts = absl::StrSplit(path.substr(1), '/');
  for (const HttpRoute& route : routes_) {
    if (parts.size() != route.segments.size()) continue;
    RouteMatch match{&route, {}};
    bool ok = true;
    for (size_t i = 0; ok && i < parts.size(); ++i) {
      absl::string_view part = parts[i];
      if (i + 1 == parts.size()) {
        // The last segment carries the custom verb, if any; a bound field never holds a colon
        // there, so `{id}` and `{id}:approve` never both match.
        const size_t colon = part.rfind(':');
        const absl::string_view custom =
            colon == absl::string_view::npos ? absl::string_view() : part.substr(colon + 1);
        if (custom != route.custom) {
          ok = false;
          break;
        }
        if (colon != absl::string_view::npos) part = part.substr(0, colon);
      }
      if (route.is_field[i]) {
        ok = !part.empty();
        match.bindings.emplace_back(route.segments[i], std::string(part));
      } else {
        ok = part == route.segments[i];
      }
    }
    if (!ok) continue;
    if (route.verb == verb) return match;
    allowed.push_back(route.verb);
  }
  if (allowed.empty()) return absl::NotFoundError("no such path");
  return absl::UnimplementedError(absl::StrJoin(allowed, ", "));
}

}  // namespace approvald::server
