#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "db/approval.h"
#include "db/tx.h"

namespace approvald::db {

struct CreateInput {
  std::string action_type;
  std::string action_data_json = "{}";
  std::string summary;
  std::string requested_by;
  std::optional<std::string> idempotency_key;
  std::optional<absl::Time> expire_time;  ///< absolute expiry; else `ttl` from now()
  absl::Duration ttl = absl::Hours(24);
  absl::Duration max_ttl = absl::Hours(24 * 30);
  absl::Time deadline = absl::InfiniteFuture();
};

struct CreateResult {
  ApprovalRecord approval;
  bool created = false;  ///< false: an idempotent retry returned the existing approval
};

enum class Decision { kApprove, kReject, kCancel };

/// Decisions that need nothing but the row itself, so that the store may make them in one
/// statement (no separate lock round trip, no handler call; see db/queries/decide_at_once.sql).
/// The answer is the same as the full path's: an approval that does not qualify (a handler that
/// writes, a quorum, a type the actor may not decide) takes the full path.
struct DecideAtOnce {
  /// Types the actor may decide whoever requested them (for approve: self-approval allowed).
  std::vector<std::string> any_requester;
  /// Types the actor may decide unless the actor requested the approval.
  std::vector<std::string> not_own;
  /// Cancel: the requester's own approvals, of any type (the types above are ignored).
  bool own_only = false;
  /// Approve: a JSON object holding each listed type's execution result, by type name.
  std::string results_json;
};

struct DecideInput {
  Decision decision = Decision::kApprove;
  std::string id;
  std::string actor;             ///< the authenticated principal
  int64_t expected_version = 0;  ///< 0 = any
  std::string reason;            ///< Approve's comment, Reject's / Cancel's reason
  std::optional<std::string> request_id;
  absl::Time deadline = absl::InfiniteFuture();
};

/// What the action type's policy says about a decision on one approval.
struct DecisionPolicy {
  /// Approve only: distinct votes needed. Below it a vote is recorded (status stays pending,
  /// version bumped, a 'voted' event); the vote that reaches it runs the action.
  int required_approvals = 1;
};

/// An approved action that the caller's own workers run (an external type): the decision
/// enqueues it as an execution, in its transaction, instead of running a handler.
struct ExternalExecution {
  int max_attempts = 5;
};

/// The policy and the action a decision runs with, which the store calls while it holds the
/// approval's row lock. Implemented by the caller (the service, from handlers/policy.h).
class DecisionRules {
 public:
  virtual ~DecisionRules() = default;
  /// Called with the locked, pending, unexpired row: the policy (self-approval, roles,
  /// requester-only cancel). A non-OK status is the answer and nothing changes.
  virtual absl::StatusOr<DecisionPolicy> Authorize(const ApprovalRecord& approval) const = 0;
  /// Approve only: runs the action inside the decision's transaction and returns its result as a
  /// JSON object. Its errors follow the handler error contract of handlers/action_handler.h
  /// (ActionHandler::Execute): which leave the approval pending, which make it FAILED.
  virtual absl::StatusOr<std::string> Execute(Tx& tx, const ApprovalRecord& approval) const = 0;
  /// Approve only, before Execute: an external type's execution to enqueue instead (Execute is
  /// then not called); nullopt: Execute runs the action.
  virtual std::optional<ExternalExecution> External(const ApprovalRecord& approval) const {
    (void)approval;
    return std::nullopt;
  }
  /// The decisions Authorize and Execute would allow for any row of some types (see
  /// DecideAtOnce); nullopt: none.
  virtual std::optional<DecideAtOnce> AtOnce() const { return std::nullopt; }
  /// After the call committed a change to an approval of `action_type`: now `status` (decided,
  /// failed or expired by this call, or "pending" after a vote). Not called for an answer
  /// repeated from an earlier call with the same request id, which changed nothing.
  virtual void Changed(const std::string& action_type, const std::string& status) const {
    (void)action_type;
    (void)status;
  }
};

/// What a call started without blocking (ApprovalStore::StartCreate, StartDecideAtOnce) came
/// to; given to its callback on a thread that must not block.
template <typename T>
struct AsyncOutcome {
  /// The outcome; nullopt: the call was not made this way and nothing changed, so the blocking
  /// call (Create, Decide) is to be made, which gives the answer.
  absl::StatusOr<std::optional<T>> result = std::optional<T>();
  /// Set instead of `result` when the commit was lost with its connection: to run where
  /// blocking is allowed; it settles the commit and gives the outcome, as the blocking call
  /// does after such a loss.
  std::function<absl::StatusOr<T>()> settle;
};

template <typename T>
using AsyncDone = std::function<void(AsyncOutcome<T>)>;

/// Some approvals' events (ApprovalStore::ReadEventsOf).
struct EventsOf {
  std::vector<EventRecord> events;  ///< in id order
  /// Every deliverable event of these approvals up to this id is in `events` (or was before
  /// the `after_id` asked for): a reader of the whole log may go on from here.
  int64_t read_to = 0;
};

struct ListCursor {
  int64_t create_time_micros = 0;
  std::string id;
};

struct ListInput {
  std::vector<std::string> statuses;  ///< empty = all
  std::optional<std::string> action_type;
  std::optional<std::string> requested_by;
  std::optional<std::string> decided_by;
  std::vector<std::string> execution_states;  ///< empty = any (and approvals without one)
  int limit = 50;
  std::optional<ListCursor> after;
  absl::Time deadline = absl::InfiniteFuture();
};

/// The approval state machine on PostgreSQL. Thread-safe: each call leases its own connection.
///
/// Errors common to every call: UNAVAILABLE (database unreachable; nothing changed),
/// DEADLINE_EXCEEDED (the deadline passed before or during the work), INTERNAL.
class ApprovalStore {
 public:
  virtual ~ApprovalStore() = default;

  /// Inserts a pending approval and its 'created' event. With an idempotency key the requester
  /// already used: the existing approval if the payload is equal, else
  /// ALREADY_EXISTS / IDEMPOTENCY_KEY_CONFLICT. An expire_time in the past or beyond max_ttl:
  /// INVALID_ARGUMENT.
  virtual absl::StatusOr<CreateResult> Create(const CreateInput& input) = 0;

  /// NOT_FOUND if there is no such approval.
  virtual absl::StatusOr<ApprovalRecord> Get(const std::string& id, absl::Time deadline) = 0;

  /// Newest first (create_time desc, id desc), at most `limit` rows after the cursor.
  virtual absl::StatusOr<std::vector<ApprovalRecord>> List(const ListInput& input) = 0;

  /// Decides a pending approval under its row lock, in one transaction, by `rules`:
  /// NOT_FOUND; FAILED_PRECONDITION / ALREADY_PROCESSED (decided) or EXPIRED (expired, or found
  /// expired by the database clock, which is recorded); ABORTED / VERSION_MISMATCH;
  /// `authorize`'s error; FAILED_PRECONDITION / ALREADY_VOTED (a second vote by the same
  /// reviewer); FAILED_PRECONDITION / EXECUTION_FAILED (the action failed: the approval
  /// is now FAILED). A repeated request_id by the same actor answers the first call's outcome.
  /// A COMMIT lost with the connection is settled and read back, never re-run: the answer is the
  /// call's own outcome if its commit went through (known from its request id's record, else
  /// from a token the call wrote with its event), else UNAVAILABLE ("nothing changed, retry")
  /// while the approval is pending, or ALREADY_PROCESSED / EXPIRED once another call decided it.
  /// The domain errors carry the current `status` and `version` in their ErrorInfo metadata.
  virtual absl::StatusOr<ApprovalRecord> Decide(const DecideInput& input,
                                                const DecisionRules& rules) = 0;

  /// Create, and a decision at once (DecisionRules::AtOnce), started without blocking the
  /// caller: true if started, and `done` runs later on another thread. The common case (a new
  /// approval; a decision the at-once statement makes) ends there; any other (an idempotent
  /// retry, an expire_time, a decision that needs the full path, a failure) comes back as
  /// nullopt, for the blocking call. False (and `done` is never called) if the store cannot
  /// start it (none by default).
  virtual bool StartCreate(const CreateInput& input, AsyncDone<CreateResult> done) {
    (void)input;
    (void)done;
    return false;
  }
  virtual bool StartDecideAtOnce(const DecideInput& input, const DecideAtOnce& once,
                                 AsyncDone<ApprovalRecord> done) {
    (void)input;
    (void)once;
    (void)done;
    return false;
  }

  /// Up to `limit` deliverable events after `after_id`, in id order (see 0003_event_stream.sql:
  /// an event is deliverable once no older transaction is running).
  virtual absl::StatusOr<std::vector<EventRecord>> ReadEvents(int64_t after_id, int limit,
                                                              absl::Time deadline) = 0;

  /// As ReadEvents, only the events of `approval_ids` (read by approval, not by scanning the
  /// log).
  virtual absl::StatusOr<EventsOf> ReadEventsOf(const std::vector<std::string>& approval_ids,
                                                int64_t after_id, int limit,
                                                absl::Time deadline) = 0;

  /// The id of the newest committed event, deliverable or not (0 if the log is empty): no
  /// client can have been given an event id above it.
  virtual absl::StatusOr<int64_t> NewestEventId(absl::Time deadline) = 0;

  /// Expires up to `batch` pending approvals whose expires_at has passed (database clock), each
  /// with an 'expired' event; rows locked by a decision in progress are skipped. Returns how many
  /// of each action type.
  virtual absl::StatusOr<std::map<std::string, int>> ExpireDue(int batch) = 0;

  /// A server-wide setting from approvald_settings; NOT_FOUND if absent.
  virtual absl::StatusOr<std::string> GetSetting(const std::string& name) = 0;
};

}  // namespace approvald::db
