#pragma once

#include <memory>
#include <string>

#include "absl/strings/string_view.h"

namespace spdlog {
class logger;
}

namespace approvald::server {

/// One JSON object per line: {"time": ..., "level": ..., "logger": ..., "msg": ...}, the message
/// escaped as a JSON string (for log shippers that parse JSON).
void UseJsonLogFormat(spdlog::logger& logger);

/// Text that came from a caller, made safe for one line of the text log: control characters
/// (newline, carriage return, escape, ...) and backslashes are written as C escapes, so nobody
/// can forge or split a log line. Printable characters, UTF-8 included, stay as they are.
std::string EscapeForLog(absl::string_view text);

}  // namespace approvald::server
