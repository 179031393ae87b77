#include "server/executor.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>

namespace approvald::server {
namespace {

TEST(ExecutorTest, RunsEveryTaskAndDrainsOnShutdown) {
  std::atomic<int> ran{0};
  Executor executor(2, 100);
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(executor.TrySubmit([&] { ran++; }));
  executor.Shutdown();
  EXPECT_EQ(ran.load(), 50);
  EXPECT_FALSE(executor.TrySubmit([] {}));
}

TEST(ExecutorTest, FullQueueRefusesAtOnce) {
  std::promise<void> release;
  Executor executor(1, 2);
  std::promise<void> started;
  ASSERT_TRUE(executor.TrySubmit([&] {
    started.set_value();
    release.get_future().wait();
  }));
  started.get_future().wait();
  EXPECT_TRUE(executor.TrySubmit([] {}));
  EXPECT_TRUE(executor.TrySubmit([] {}));
  EXPECT_FALSE(executor.TrySubmit([] {}));  // bounded: the third queued task is refused
  EXPECT_EQ(executor.queue_depth(), 2u);
  release.set_value();
  executor.Shutdown();
  EXPECT_EQ(executor.queue_depth(), 0u);
}

}  // namespace
}  // namespace approvald::server
