// PgApprovalStore: creating approvals, reading them and the event log, expiry and settings
// (the decisions are in pg_approval_store.cc, a lost COMMIT's settling in lost_commit.cc).

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "db/errors.h"
#include "db/pg/approval_row.h"
#include "db/pg/decision_ids.h"
#include "db/pg/pg_approval_store.h"
#include "db/pg/pg_error.h"
#include "db/pg/pg_events.h"
#include "db/pg/pg_time.h"
#include "db/queries.h"
#include "db/status_macros.h"

namespace approvald::db::pg {

Params PgApprovalStore::InsertParams(const CreateInput& in, const std::string& id,
                                     Param expire_micros) {
  return {in.action_type,
          in.action_data_json,
          in.summary,
          in.requested_by,
          in.idempotency_key ? Param(*in.idempotency_key) : Param(),
          std::move(expire_micros),
          absl::StrCat(absl::ToInt64Microseconds(in.ttl)),
          id};
}

absl::StatusOr<CreateResult> PgApprovalStore::Create(const CreateInput& in) {
  CreateResult result;
  // The id is made here, not by the database: BEGIN, the insert and COMMIT then go out in one
  // round trip, and a commit lost with its connection can still be read back by that id.
  const std::string id = NewUuid();
  const Param key = in.idempotency_key ? Param(*in.idempotency_key) : Param();
  absl::Status st;
  // A key whose holder rolled back between the insert and the lookup: insert again.
  for (int attempt = 1; attempt <= 3; ++attempt) {
    bool key_taken = false;
    st = RunInTransaction(pool_, in.deadline, [&](PgTx& tx) -> absl::Status {
      Param expire_micros;
      if (in.expire_time) {
        expire_micros = absl::StrCat(ToMicros(*in.expire_time));
        ASSIGN_OR_RETURN(
            Rows check,
            tx.Exec(queries::kCheckExpireTime,
                    {expire_micros, absl::StrCat(absl::ToInt64Microseconds(in.max_ttl))}));
        if (!check.GetBool(0, "in_future")) {
          return FieldError("expire_time", "must be in the future (by the database clock)");
        }
        if (!check.GetBool(0, "within_max")) {
          return FieldError("expire_time", absl::StrCat("must be within the maximum ttl of ",
                                                        absl::FormatDuration(in.max_ttl)));
        }
      }
      ASSIGN_OR_RETURN(Rows inserted, tx.ExecAndCommit(queries::kInsertApproval,
                                                       InsertParams(in, id, expire_micros)));
      key_taken = inserted.empty();
      if (key_taken) return absl::OkStatus();
      ASSIGN_OR_RETURN(result.approval, ParseApprovalRow(inserted, 0));
      result.created = true;
      return absl::OkStatus();
    });
    if (LostCommitBackend(st)) return ResolveLostCreate(in, id, st);
    if (!st.ok()) return st;
    if (!key_taken) return result;

    // The requester used this idempotency key before: answer with that approval, if it is the
    // same request.
    bool raced = false;
    st = RunInTransaction(pool_, in.deadline, [&](PgTx& tx) -> absl::Status {
      ASSIGN_OR_RETURN(Rows existing, tx.Exec(queries::kFindByIdempotencyKey,
                                              {in.requested_by, key, in.action_type,
                                               in.action_data_json, in.summary}));
      raced = existing.empty();
      if (raced) return absl::AbortedError("idempotency key raced with a rolled-back insert");
      ASSIGN_OR_RETURN(result.approval, ParseApprovalRow(existing, 0));
      result.created = false;
      if (!existing.GetBool(0, "same_payload")) {
        return ReasonError(absl::StatusCode::kAlreadyExists,
                           approvals::v1::IDEMPOTENCY_KEY_CONFLICT,
                           "idempotency_key was already used with a different payload",
                           {{"approval_id", result.approval.id}});
      }
      return tx.Commit();
    });
    if (!raced) break;
  }
  if (!st.ok()) return st;
  return result;
}

absl::StatusOr<ApprovalRecord> PgApprovalStore::Get(const std::string& id, absl::Time deadline) {
  ASSIGN_OR_RETURN(PoolLease lease, pool_.Acquire(deadline));
  DeadlineGuard watch(*lease, deadline);
  ASSIGN_OR_RETURN(Rows rows, lease->Exec(queries::kGetApproval, {id}));
  if (rows.empty()) return absl::NotFoundError(absl::StrCat("approval ", id, " not found"));
  return ParseApprovalRow(rows, 0);
}

absl::StatusOr<std::vector<ApprovalRecord>> PgApprovalStore::List(const ListInput& in) {
  Param statuses;
  if (!in.statuses.empty()) {
    std::string array = "{";
    for (size_t i = 0; i < in.statuses.size(); ++i) {
      absl::StrAppend(&array, i ? "," : "", in.statuses[i]);  // fixed lowercase names only
    }
    statuses = array + "}";
  }
  Param after_micros, after_id;
  if (in.after) {
    after_micros = absl::StrCat(in.after->create_time_micros);
    after_id = in.after->id;
  }
  ASSIGN_OR_RETURN(PoolLease lease, pool_.Acquire(in.deadline));
  DeadlineGuard watch(*lease, in.deadline);
  ASSIGN_OR_RETURN(
      Rows rows,
      lease->Exec(
          queries::kListApprovals,
          {statuses, in.action_type ? Param(*in.action_type) : Param(), after_micros, after_id,
           absl::StrCat(in.limit), in.requested_by ? Param(*in.requested_by) : Param(),
           in.decided_by ? Param(*in.decided_by) : Param(),
           in.execution_states.empty() ? Param() : Param(TextArray(in.execution_states))}));
  std::vector<ApprovalRecord> out;
  out.reserve(rows.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    ASSIGN_OR_RETURN(ApprovalRecord a, ParseApprovalRow(rows, i));
    out.push_back(std::move(a));
  }
  return out;
}

absl::StatusOr<std::vector<EventRecord>> PgApprovalStore::ReadEvents(int64_t after_id, int limit,
                                                                     absl::Time deadline) {
  ASSIGN_OR_RETURN(PoolLease lease, pool_.Acquire(deadline));
  return ReadEventBatch(*lease, after_id, limit);
}

absl::StatusOr<EventsOf> PgApprovalStore::ReadEventsOf(const std::vector<std::string>& approval_ids,
                                                       int64_t after_id, int limit,
                                                       absl::Time deadline) {
  ASSIGN_OR_RETURN(PoolLease lease, pool_.Acquire(deadline));
  ASSIGN_OR_RETURN(Rows rows,
                   lease->Exec(queries::kReadEventsOf, {absl::StrCat(after_id), absl::StrCat(limit),
                                                        TextArray(approval_ids)}));
  EventsOf out;
  for (size_t i = 0; i < rows.size(); ++i) {
    if (i == 0) {
      ASSIGN_OR_RETURN(out.read_to, rows.GetInt(0, "read_to"));
    }
    if (!rows.Get(i, "id")) continue;  // no event: the row of read_to alone
    ASSIGN_OR_RETURN(EventRecord e, ParseEventRow(rows, i));
    out.events.push_back(std::move(e));
  }
  // A full batch was read up to its last event only.
  if (!out.events.empty() && static_cast<int>(out.events.size()) >= limit) {
    out.read_to = out.events.back().id;
  }
  out.read_to = std::max(out.read_to, after_id);
  return out;
}

absl::StatusOr<int64_t> PgApprovalStore::NewestEventId(absl::Time deadline) {
  ASSIGN_OR_RETURN(PoolLease lease, pool_.Acquire(deadline));
  return pg::NewestEventId(*lease);
}

absl::StatusOr<std::map<std::string, int>> PgApprovalStore::ExpireDue(int batch) {
  std::map<std::string, int> expired;
  RETURN_IF_ERROR(RunInTransaction(pool_, absl::Now() + absl::Seconds(30), [&](PgTx& tx) {
    expired.clear();  // a retried transaction starts over
    ASSIGN_OR_RETURN(Rows rows, tx.Exec(queries::kExpireDue, {absl::StrCat(batch)}));
    for (size_t r = 0; r < rows.size(); ++r) {
      ASSIGN_OR_RETURN(int64_t n, rows.GetInt(r, "expired"));
      expired[rows.GetString(r, "action_type")] = static_cast<int>(n);
    }
    return tx.Commit();
  }));
  return expired;
}

absl::StatusOr<std::string> PgApprovalStore::GetSetting(const std::string& name) {
  ASSIGN_OR_RETURN(PoolLease lease, pool_.Acquire(absl::Now() + absl::Seconds(30)));
  ASSIGN_OR_RETURN(Rows rows, lease->Exec(queries::kGetSetting, {name}));
  if (rows.empty()) return absl::NotFoundError(absl::StrCat("setting ", name, " not found"));
  return rows.GetString(0, "value");
}

}  // namespace approvald::db::pg
