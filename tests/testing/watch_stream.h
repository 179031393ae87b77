#pragma once

#include <grpcpp/client_context.h>
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"
#include "approvals/v1/approvals.grpc.pb.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/test_server.h"

namespace approvald::testing {

// Reads a stream on its own thread; the test waits for events with a bounded timeout.
class Watch {
 public:
  Watch(TestServer& ts, approvals::v1::WatchApprovalsRequest req, const std::string& who = "alice")
      : stub_(approvals::v1::ApprovalService::NewStub(ts.NewChannel())) {
    ctx_.AddMetadata("authorization", "Bearer tok-" + who);
    ctx_.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    reader_ = stub_->WatchApprovals(&ctx_, req);
    thread_ = std::thread([this] {
      approvals::v1::ApprovalEvent e;
      while (reader_->Read(&e)) {
        std::lock_guard<std::mutex> lock(mu_);
        events_.push_back(e);
        changed_.notify_all();
      }
      grpc::Status st = reader_->Finish();
      std::lock_guard<std::mutex> lock(mu_);
      status_ = st;
      ended_ = true;
      changed_.notify_all();
    });
  }
  ~Watch() {
    ctx_.TryCancel();
    thread_.join();
  }

  // The first `n` events (waits up to 10 s); fewer if the stream ended or time ran out.
  std::vector<approvals::v1::ApprovalEvent> Take(size_t n,
                                                 absl::Duration timeout = absl::Seconds(10)) {
    std::unique_lock<std::mutex> lock(mu_);
    changed_.wait_for(lock, absl::ToChronoNanoseconds(timeout),
                      [&] { return events_.size() >= n || ended_; });
    std::vector<approvals::v1::ApprovalEvent> out;
    while (!events_.empty() && out.size() < n) {
      out.push_back(events_.front());
      events_.pop_front();
    }
    return out;
  }
  size_t Pending() {
    std::lock_guard<std::mutex> lock(mu_);
    return events_.size();
  }
  grpc::Status WaitEnd() {
    std::unique_lock<std::mutex> lock(mu_);
    changed_.wait_for(lock, std::chrono::seconds(20), [&] { return ended_; });
    return status_;
  }

 private:
  std::unique_ptr<approvals::v1::ApprovalService::Stub> stub_;
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientReader<approvals::v1::ApprovalEvent>> reader_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable changed_;
  std::deque<approvals::v1::ApprovalEvent> events_ ABSL_GUARDED_BY(mu_);
  grpc::Status status_ ABSL_GUARDED_BY(mu_);
  bool ended_ ABSL_GUARDED_BY(mu_) = false;
};

// Waits until the hub has `n` live watchers (the stream is attached).
inline bool AwaitWatchers(TestServer& ts, size_t n) {
  for (int i = 0; i < 1000; ++i) {
    if (ts.server().hub().sinks() == n) return true;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return false;
}

/// A test on a TestServer that creates and decides approvals to watch.
class WatchServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ts_ = TestServer::Start();
    ASSERT_NE(ts_, nullptr);
  }
  approvals::v1::Approval Create(const std::string& type = "test.effect",
                                 const std::string& requester = "agent") {
    approvals::v1::CreateApprovalRequest req;
    req.set_action_type(type);
    auto r = ts_->Client(requester)->Create(req);
    EXPECT_OK(r);
    return r.ok() ? *r : approvals::v1::Approval();
  }
  void Approve(const std::string& id) {
    approvals::v1::ApproveRequest req;
    req.set_id(id);
    EXPECT_OK(ts_->Client("alice")->Approve(req));
  }
  void Reject(const std::string& id) {
    approvals::v1::RejectRequest req;
    req.set_id(id);
    req.set_reason("no");
    EXPECT_OK(ts_->Client("bob")->Reject(req));
  }
  std::unique_ptr<TestServer> ts_;
};

}  // namespace approvald::testing
