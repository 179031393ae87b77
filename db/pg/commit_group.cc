#include "db/pg/commit_group.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "db/pg/pg_error.h"
#include "db/queries.h"

namespace approvald::db::pg {

absl::StatusOr<Rows> ExecAlone(PgConnection& conn, PgConnection::Step step) {
  std::vector<PgConnection::Step> one;
  one.push_back(std::move(step));
  bool sent = false;
  absl::StatusOr<std::vector<Rows>> rows = conn.ExecPipeline(one, &sent);
  if (!rows.ok()) {
    if (sent && conn.broken()) {
      return CommitOutcomeUnknown({conn.backend_pid(), conn.backend_start()});
    }
    return rows.status();  // failed, so not committed; or never sent
  }
  return std::move(rows->front());
}

absl::StatusOr<Rows> CommitGroup::ExecAndCommit(PgConnection& conn, PgConnection::Step step) {
  if (max_batches_ <= 0) return ExecAlone(conn, std::move(step));
  Item me;
  me.step = std::move(step);
  std::unique_lock<std::mutex> lock(mu_);
  if (in_flight_ < max_batches_) {
    ++in_flight_;
    me.lead = true;
  } else {
    // Until a batch carries this statement, or a caller whose batch ended hands over its slot.
    queue_.push_back(&me);
    me.cv.wait(lock, [&me] { return me.done || me.lead; });
  }
  if (me.lead) {
    // This caller holds a slot and its statement is in no queue: it sends the next batch,
    // its own statement first, then the ones waiting longest.
    std::vector<Item*> batch{&me};
    while (!queue_.empty() && batch.size() < max_batch_) {
      batch.push_back(queue_.front());
      queue_.pop_front();
    }
    lock.unlock();
    Send(conn, batch);
    lock.lock();
    ++batches_;
    if (batch.size() > 1) grouped_ += batch.size();
    for (Item* item : batch) {
      item->done = true;
      if (item != &me) item->cv.notify_one();
    }
    // The slot goes to the statement that waits longest, taken out of the queue so that no
    // other batch carries it and no other ending batch hands it a second slot; or back.
    if (queue_.empty()) {
      --in_flight_;
    } else {
      Item* next = queue_.front();
      queue_.pop_front();
      next->lead = true;
      next->cv.notify_one();
    }
  }
  lock.unlock();
  if (me.alone) return ExecAlone(conn, std::move(me.step));
  return std::move(me.result);
}

void CommitGroup::Send(PgConnection& conn, const std::vector<Item*>& batch) {
  if (batch.size() == 1) {
    batch[0]->result = ExecAlone(conn, std::move(batch[0]->step));
    return;
  }
  std::vector<PgConnection::Step> steps;
  steps.reserve(batch.size() + 3);
  steps.push_back({&queries::kBegin, {}});
  steps.push_back({&queries::kSetBatchLockTimeout, {absl::StrCat(kBatchLockTimeoutMs)}});
  // Moved, not copied (a create's parameters can be megabytes); moved back below.
  for (Item* item : batch) steps.push_back(std::move(item->step));
  steps.push_back({&queries::kCommit, {}});
  bool sent = false;
  absl::StatusOr<std::vector<Rows>> rows = conn.ExecPipeline(steps, &sent);
  for (size_t i = 0; i < batch.size(); ++i) batch[i]->step = std::move(steps[i + 2]);
  if (rows.ok()) {
    for (size_t i = 0; i < batch.size(); ++i) batch[i]->result = std::move((*rows)[i + 2]);
    return;
  }
  absl::Status all = rows.status();
  if (sent && conn.broken()) {
    all = CommitOutcomeUnknown({conn.backend_pid(), conn.backend_start()});
  } else if (!conn.broken()) {
    // A statement failed (or waited too long for a lock): nothing of the batch committed.
    // Each caller runs its statement again alone, on its own connection, so that it gets its
    // own statement's outcome and a lock wait holds up no one else.
    if (conn.ExecScript("ROLLBACK").ok()) {
      for (Item* item : batch) item->alone = true;
      return;
    }
    conn.MarkBroken();
    all = MarkTransient(absl::UnavailableError(
        "the database connection was left in an unknown state by a failed group commit"));
  }
  for (Item* item : batch) item->result = all;
}

uint64_t CommitGroup::grouped_statements() const {
  std::lock_guard<std::mutex> lock(mu_);
  return grouped_;
}

uint64_t CommitGroup::batches() const {
  std::lock_guard<std::mutex> lock(mu_);
  return batches_;
}

size_t CommitGroup::queued() const {
  std::lock_guard<std::mutex> lock(mu_);
  return queue_.size();
}

int CommitGroup::in_flight() const {
  std::lock_guard<std::mutex> lock(mu_);
  return in_flight_;
}

}  // namespace approvald::db::pg
