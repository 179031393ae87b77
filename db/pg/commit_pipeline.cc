#include "db/pg/commit_pipeline.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "db/pg/pg_error.h"
#include "db/pg/pg_tx.h"
#include "db/queries.h"

namespace approvald::db::pg {

CommitPipeline::CommitPipeline(ConnectionPool& pool, int senders, size_t max_queue,
                               size_t max_batch)
    : pool_(pool), max_queue_(max_queue), max_batch_(max_batch) {
  senders_.reserve(static_cast<size_t>(senders));
  for (int i = 0; i < senders; ++i) senders_.emplace_back([this] { Run(); });
}

CommitPipeline::~CommitPipeline() { Shutdown(); }

bool CommitPipeline::Submit(PgConnection::Step step, absl::Time deadline, Done done) {
  bool wake = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ || queue_.size() >= max_queue_) return false;
    queue_.push_back(Item{std::move(step), deadline, std::move(done)});
    // A busy sender takes this statement with its next batch: no wake-up (and no system call)
    // for it.
    wake = idle_senders_ > 0;
  }
  if (wake) work_.notify_one();
  return true;
}

void CommitPipeline::Shutdown() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ && senders_.empty()) return;
    stopping_ = true;
  }
  work_.notify_all();
  for (std::thread& t : senders_) {
    if (t.joinable()) t.join();
  }
  senders_.clear();
}

void CommitPipeline::Run() {
  std::unique_ptr<PgConnection> conn;
  std::vector<Item> batch;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      ++idle_senders_;
      work_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      --idle_senders_;
      if (queue_.empty()) return;  // stopping, and everything queued was sent
      while (!queue_.empty() && batch.size() < max_batch_) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      ++batches_;
      if (batch.size() > 1) grouped_ += batch.size();
    }
    Send(conn, batch);
    batch.clear();
  }
}

absl::Status CommitPipeline::EnsureConnected(std::unique_ptr<PgConnection>& conn) {
  if (conn != nullptr && conn->reusable()) return absl::OkStatus();
  conn.reset();
  absl::StatusOr<std::unique_ptr<PgConnection>> fresh = pool_.Connect();
  if (!fresh.ok()) return fresh.status();
  if (absl::Status st = (*fresh)->ExecScript(absl::StrCat("SET lock_timeout = ", kLockTimeoutMs));
      !st.ok()) {
    return st;
  }
  conn = std::move(*fresh);
  return absl::OkStatus();
}

void CommitPipeline::Send(std::unique_ptr<PgConnection>& conn, std::vector<Item>& batch) {
  // A statement whose caller has given up is not sent.
  const absl::Time now = absl::Now();
  std::vector<Item> live;
  live.reserve(batch.size());
  for (Item& item : batch) {
    if (item.deadline <= now) {
      item.done(absl::DeadlineExceededError("the deadline passed before the statement was sent"));
    } else {
      live.push_back(std::move(item));
    }
  }
  if (live.empty()) return;
  if (absl::Status st = EnsureConnected(conn); !st.ok()) {
    for (Item& item : live) item.done(st);
    return;
  }
  if (live.size() == 1) {
    live[0].done(ExecAlone(*conn, std::move(live[0].step)));
    return;
  }
  std::vector<PgConnection::Step> steps;
  steps.reserve(live.size() + 2);
  steps.push_back({&queries::kBegin, {}});
  for (Item& item : live) steps.push_back(std::move(item.step));
  steps.push_back({&queries::kCommit, {}});
  bool sent = false;
  absl::StatusOr<std::vector<Rows>> rows = conn->ExecPipeline(steps, &sent);
  if (rows.ok()) {
    for (size_t i = 0; i < live.size(); ++i) live[i].done(std::move((*rows)[i + 1]));
    return;
  }
  absl::Status all;
  if (sent && conn->broken()) {
    all = CommitOutcomeUnknown({conn->backend_pid(), conn->backend_start()});
  } else {
    // A statement failed, or waited too long for a lock: nothing of the batch committed.
    if (!conn->broken() && !conn->ExecScript("ROLLBACK").ok()) conn->MarkBroken();
    all = absl::AbortedError(absl::StrCat("a statement of its group commit failed (",
                                          rows.status().message(),
                                          "); nothing of the group committed"));
  }
  for (Item& item : live) item.done(all);
}

uint64_t CommitPipeline::batches() const {
  std::lock_guard<std::mutex> lock(mu_);
  return batches_;
}

uint64_t CommitPipeline::grouped_statements() const {
  std::lock_guard<std::mutex> lock(mu_);
  return grouped_;
}

size_t CommitPipeline::queued() const {
  std::lock_guard<std::mutex> lock(mu_);
  return queue_.size();
}

}  // namespace approvald::db::pg
