#pragma once

#include <memory>

namespace spdlog {
class logger;
}

namespace approvald::server {

/// One JSON object per line: {"time": ..., "level": ..., "logger": ..., "msg": ...}, the message
/// escaped as a JSON string (for log shippers that parse JSON).
void UseJsonLogFormat(spdlog::logger& logger);

}  // namespace approvald::server
