#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace approvald::server {

/// A listening TCP socket (non-blocking, close-on-exec) and the port it is bound to.
struct ListenSocket {
  int fd = -1;
  int port = 0;
};

/// Binds and listens on `addr` (`host:port`, `[v6]:port`, `:port` for every address; port 0
/// picks a free one). INVALID_ARGUMENT naming `flag` if it cannot be parsed, resolved or bound.
absl::StatusOr<ListenSocket> ListenOn(const std::string& flag, const std::string& addr);

}  // namespace approvald::server
