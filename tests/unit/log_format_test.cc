#include "server/ops/log_format.h"

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <sstream>

namespace approvald::server {
namespace {

TEST(LogFormatTest, JsonLinesEscapeTheMessage) {
  std::ostringstream out;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out);
  spdlog::logger logger("approvald", sink);
  UseJsonLogFormat(logger);
  logger.info("rpc method={} message={}", "Approve", "say \"no\"\nnow\\");
  const std::string line = out.str();
  EXPECT_EQ(line.rfind("{\"time\":\"", 0), 0u) << line;
  EXPECT_NE(line.find("\"level\":\"info\",\"logger\":\"approvald\""), std::string::npos) << line;
  EXPECT_NE(line.find(R"("msg":"rpc method=Approve message=say \"no\"\u000anow\\"})"),
            std::string::npos)
      << line;
  EXPECT_EQ(std::count(line.begin(), line.end(), '\n'), 1);
}

}  // namespace
}  // namespace approvald::server
