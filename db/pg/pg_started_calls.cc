// PgApprovalStore: creates and decisions at once started without blocking the caller, sent
// through the CommitPipeline (the blocking forms are in pg_create_and_read.cc and
// pg_approval_store.cc).

#include "db/pg/approval_row.h"
#include "db/pg/decision_ids.h"
#include "db/pg/pg_approval_store.h"
#include "db/pg/pg_error.h"
#include "db/queries.h"

namespace approvald::db::pg {

bool PgApprovalStore::StartCreate(const CreateInput& in, AsyncDone<CreateResult> done) {
  // An expire_time is checked by a statement of its own first: the blocking path.
  if (pipeline_ == nullptr || in.expire_time) return false;
  std::string id = NewUuid();
  PgConnection::Step step{&queries::kInsertApproval, InsertParams(in, id, Param())};
  return pipeline_->Submit(
      std::move(step), in.deadline,
      [this, id, deadline = in.deadline, done = std::move(done)](absl::StatusOr<Rows> rows) {
        AsyncOutcome<CreateResult> out;
        if (LostCommitBackend(rows.status())) {
          out.settle = [this, id, deadline, lost = rows.status()] {
            CreateInput only_deadline;
            only_deadline.deadline = deadline;
            return ResolveLostCreate(only_deadline, id, lost);
          };
        } else if (rows.ok() && !rows->empty()) {
          // (Empty: the idempotency key was used before; the blocking path answers.)
          absl::StatusOr<ApprovalRecord> row = ParseApprovalRow(*rows, 0);
          if (row.ok()) {
            out.result = std::optional<CreateResult>(CreateResult{*std::move(row), true});
          } else {
            out.result = row.status();
          }
        }
        done(std::move(out));
      });
}

bool PgApprovalStore::StartDecideAtOnce(const DecideInput& in, const db::DecideAtOnce& once,
                                        AsyncDone<ApprovalRecord> done) {
  if (pipeline_ == nullptr) return false;
  // Written with the decision: after a COMMIT lost with its connection, it tells whether this
  // call's decision committed.
  std::string call = NewCallToken();
  PgConnection::Step step{&queries::kDecideAtOnce, AtOnceParams(in, once, call)};
  return pipeline_->Submit(std::move(step), in.deadline,
                           [this, in, call, done = std::move(done)](absl::StatusOr<Rows> rows) {
                             AsyncOutcome<ApprovalRecord> out;
                             if (LostCommitBackend(rows.status())) {
                               out.settle = [this, in, call, lost = rows.status()] {
                                 return ResolveLostDecision(in, CommitIntent(), call, lost);
                               };
                             } else if (rows.ok() && !rows->empty()) {
                               // (Empty: not decided at once; the blocking path decides, or says
                               // why it cannot.)
                               absl::StatusOr<ApprovalRecord> row = ParseApprovalRow(*rows, 0);
                               if (row.ok()) {
                                 out.result = std::optional<ApprovalRecord>(*std::move(row));
                               } else {
                                 out.result = row.status();
                               }
                             }
                             done(std::move(out));
                           });
}

}  // namespace approvald::db::pg
