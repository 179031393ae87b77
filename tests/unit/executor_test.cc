#include "server/executor.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
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

TEST(ExecutorTest, StartsWorkersWhenTasksFindNoneFreeUpToItsBound) {
  Executor executor(4, 100);
  EXPECT_EQ(executor.threads(), 0u);  // nothing to run, no thread
  std::promise<void> first;
  ASSERT_TRUE(executor.TrySubmit([&] { first.set_value(); }));
  first.get_future().wait();
  EXPECT_EQ(executor.threads(), 1u);

  // Four tasks that stay running until released: all four run at once only on four workers.
  std::atomic<int> running{0};
  std::promise<void> all_running;
  std::shared_future<void> together = all_running.get_future().share();
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(executor.TrySubmit([&, released] {
      if (++running == 4) all_running.set_value();
      released.wait();
    }));
  }
  const bool all_four = together.wait_for(std::chrono::seconds(30)) == std::future_status::ready;
  std::atomic<int> later{0};
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(executor.TrySubmit([&] { later++; }));
  EXPECT_EQ(executor.threads(), 4u);  // the bound: the three later tasks wait in the queue
  EXPECT_EQ(executor.queue_depth(), 3u);
  release.set_value();
  EXPECT_TRUE(all_four);
  executor.Shutdown();
  EXPECT_EQ(later.load(), 3);
}

}  // namespace
}  // namespace approvald::server
