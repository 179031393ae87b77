#include "server/ops/log_sink.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"

namespace approvald::server {
namespace {

// A log written to a temporary file: what the sink has written so far is what the file holds.
class LogFile {
 public:
  LogFile() : file_(std::tmpfile()) {}
  ~LogFile() { std::fclose(file_); }
  int fd() const { return fileno(file_); }
  std::string Written() const {
    std::string out;
    char buf[4096];
    for (off_t at = 0;;) {
      const ssize_t n = ::pread(fd(), buf, sizeof(buf), at);
      if (n <= 0) return out;
      out.append(buf, static_cast<size_t>(n));
      at += n;
    }
  }

 private:
  std::FILE* file_;
};

std::unique_ptr<spdlog::logger> Logger(const std::shared_ptr<BatchingFdSink>& sink) {
  auto logger = std::make_unique<spdlog::logger>("test", sink);
  logger->set_pattern("%v");
  return logger;
}

TEST(BatchingFdSinkTest, InfoLinesWaitUntilAWarningWritesThemAllInOrder) {
  LogFile file;
  auto logger = Logger(std::make_shared<BatchingFdSink>(file.fd(), absl::Hours(1)));
  logger->info("one");
  logger->info("two");
  EXPECT_EQ(file.Written(), "");
  logger->warn("three");
  EXPECT_EQ(file.Written(), "one\ntwo\nthree\n");
  logger->info("four");
  logger->error("five");
  EXPECT_EQ(file.Written(), "one\ntwo\nthree\nfour\nfive\n");
}

TEST(BatchingFdSinkTest, AWaitingLineIsWrittenAfterTheIntervalWithoutMoreLogging) {
  LogFile file;
  auto logger = Logger(std::make_shared<BatchingFdSink>(file.fd(), absl::Milliseconds(50)));
  logger->info("alone");
  const absl::Time deadline = absl::Now() + absl::Seconds(10);  // 50 ms, on an idle machine
  while (file.Written().empty() && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(5));
  EXPECT_EQ(file.Written(), "alone\n");
}

TEST(BatchingFdSinkTest, FlushAndDestructionWriteWhatWaits) {
  LogFile file;
  auto sink = std::make_shared<BatchingFdSink>(file.fd(), absl::Hours(1));
  auto logger = Logger(sink);
  logger->info("flushed");
  logger->flush();
  EXPECT_EQ(file.Written(), "flushed\n");
  logger->info("at the end");
  EXPECT_EQ(file.Written(), "flushed\n");
  logger.reset();
  sink.reset();  // joins the flusher thread (it would otherwise wait an hour) and writes
  EXPECT_EQ(file.Written(), "flushed\nat the end\n");
}

TEST(BatchingFdSinkTest, AFullBufferIsWrittenAtOnce) {
  LogFile file;
  auto logger = Logger(std::make_shared<BatchingFdSink>(file.fd(), absl::Hours(1), 1000));
  const std::string line(99, 'x');  // 100 bytes with its newline
  for (int i = 0; i < 9; ++i) logger->info(line);
  EXPECT_EQ(file.Written(), "");
  logger->info(line);
  EXPECT_EQ(file.Written().size(), 1000u);
}

TEST(BatchingFdSinkTest, ZeroIntervalWritesEveryLineAtOnce) {
  LogFile file;
  auto logger = Logger(std::make_shared<BatchingFdSink>(file.fd(), absl::ZeroDuration()));
  logger->info("now");
  EXPECT_EQ(file.Written(), "now\n");
}

// approvald blocks SIGTERM and SIGHUP to sigwait for them; a thread that took them would die.
TEST(BatchingFdSinkTest, TheFlusherThreadBlocksEverySignal) {
  LogFile file;
  auto sink = std::make_shared<BatchingFdSink>(file.fd(), absl::Hours(1));
  // The blocked-signal mask of the thread named log-flusher (it names itself as it starts).
  std::string blocked;
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (blocked.empty() && absl::Now() < deadline) {
    for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
      std::ifstream status(task.path() / "status");
      std::string line;
      bool flusher = false;
      while (std::getline(status, line)) {
        if (line == "Name:\tlog-flusher") flusher = true;
        if (flusher && absl::StartsWith(line, "SigBlk:")) blocked = line.substr(7);
      }
    }
    if (blocked.empty()) absl::SleepFor(absl::Milliseconds(5));
  }
  const uint64_t mask = std::stoull(std::string(absl::StripAsciiWhitespace(blocked)), nullptr, 16);
  for (int sig : {SIGTERM, SIGHUP, SIGINT, SIGQUIT, SIGUSR1, SIGPIPE}) {
    EXPECT_TRUE(mask & (uint64_t{1} << (sig - 1))) << "signal " << sig << ", SigBlk " << blocked;
  }
}

TEST(BatchingFdSinkTest, ManyThreadsLoseNoLineAndTearNone) {
  LogFile file;
  auto sink = std::make_shared<BatchingFdSink>(file.fd(), absl::Milliseconds(1), 4096);
  auto logger = Logger(sink);
  constexpr int kThreads = 8;
  constexpr int kLines = 2000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kLines; ++i) logger->info("thread {} line {} end", t, i);
    });
  }
  for (std::thread& t : threads) t.join();
  logger.reset();
  sink.reset();
  std::vector<int> next(kThreads, 0);  // each thread's lines arrive whole and in its order
  int lines = 0;
  for (absl::string_view l : absl::StrSplit(file.Written(), '\n', absl::SkipEmpty())) {
    ++lines;
    int t = -1, i = -1;
    ASSERT_EQ(std::sscanf(std::string(l).c_str(), "thread %d line %d end", &t, &i), 2) << l;
    ASSERT_TRUE(t >= 0 && t < kThreads) << l;
    EXPECT_EQ(i, next[t]) << l;
    next[t] = i + 1;
  }
  EXPECT_EQ(lines, kThreads * kLines);
}

}  // namespace
}  // namespace approvald::server
