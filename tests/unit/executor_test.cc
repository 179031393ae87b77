#include "server/executor.h"

#include <gtest/gtest.h>

#include <atomic>

#include "absl/synchronization/notification.h"

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
  absl::Notification release;
  Executor executor(1, 2);
  absl::Notification started;
  ASSERT_TRUE(executor.TrySubmit([&] {
    started.Notify();
    release.WaitForNotification();
  }));
  started.WaitForNotification();
  EXPECT_TRUE(executor.TrySubmit([] {}));
  EXPECT_TRUE(executor.TrySubmit([] {}));
  EXPECT_FALSE(executor.TrySubmit([] {}));  // bounded: the third queued task is refused
  EXPECT_EQ(executor.queue_depth(), 2u);
  release.Notify();
  executor.Shutdown();
  EXPECT_EQ(executor.queue_depth(), 0u);
}

}  // namespace
}  // namespace approvald::server
