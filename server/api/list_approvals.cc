// ListApprovals: pages bounded by rows, wire size, memory and the daemon's memory budget.

#include <algorithm>
#include <atomic>
#include <cstring>

#include "absl/strings/ascii.h"
#include "db/status_macros.h"
#include "server/api/approval_service.h"
#include "server/api/proto_convert.h"

namespace approvald::server {

namespace v1 = approvals::v1;

namespace {

// The largest page ListApprovals builds, well under the 4 MiB default receive limit of gRPC
// clients (the rest of the message and the framing need a little room).
constexpr size_t kMaxPageBytes = 3 * 1024 * 1024;
// The largest page held in memory: a page of large approvals (whose protobuf Structs take many
// times their JSON) is shorter, never larger.
constexpr size_t kMaxPageMemory = 8 * 1024 * 1024;
// What the first read of a page may bring in (rows are sized by what the rows of recent pages
// weighed): a default page of ordinary approvals in one query, a few rows of large ones. Later
// reads are sized by what the page's own rows weighed.
constexpr size_t kFirstReadBytes = 1024 * 1024;
// Bytes per row of the last page read (any call): a hint, so relaxed. Until a page was read,
// rows are taken to be as large as a create allows.
std::atomic<size_t> recent_row_bytes{64 * 1024};

// A unary reactor that gives back what its response holds of the memory budget once gRPC is
// done with it (sent, or the client gone), not at Finish.
class BudgetedReactor final : public grpc::ServerUnaryReactor {
 public:
  explicit BudgetedReactor(MemoryBudget* budget) : budget_(budget) {}
  size_t* held() { return &held_; }
  void OnDone() override {
    if (budget_ != nullptr) budget_->Give(held_);
    delete this;
  }

 private:
  MemoryBudget* const budget_;
  size_t held_ = 0;  // written by the work before Finish, read in OnDone
};

}  // namespace

grpc::ServerUnaryReactor* ApprovalServiceImpl::ListApprovals(grpc::CallbackServerContext* ctx,
                                                             const v1::ListApprovalsRequest* req,
                                                             v1::ListApprovalsResponse* resp) {
  auto* reactor = new BudgetedReactor(options_.budget);
  return Dispatch(
      ctx, "ListApprovals", Authenticate(ctx), ValidateList(*req), "", nullptr,
      [this, req, resp, held = reactor->held()](absl::Time deadline) {
        return ListWork(*req, deadline, resp, held);
      },
      reactor);
}

absl::Status ApprovalServiceImpl::ListWork(const v1::ListApprovalsRequest& req, absl::Time deadline,
                                           v1::ListApprovalsResponse* resp, size_t* held) {
  db::ListInput in;
  const int page_size =
      req.page_size() == 0 ? kDefaultPageSize : std::min(req.page_size(), kMaxPageSize);
  for (int s : req.statuses()) {
    in.statuses.emplace_back(*StatusStorageName(static_cast<v1::ApprovalStatus>(s)));
  }
  std::sort(in.statuses.begin(), in.statuses.end());
  in.statuses.erase(std::unique(in.statuses.begin(), in.statuses.end()), in.statuses.end());
  if (!req.action_type().empty()) in.action_type = req.action_type();
  if (!req.requested_by().empty()) in.requested_by = req.requested_by();
  if (!req.decided_by().empty()) in.decided_by = req.decided_by();
  for (int s : req.execution_states()) {
    in.execution_states.push_back(
        absl::AsciiStrToLower(v1::ExecutionState_Name(s).substr(strlen("EXECUTION_STATE_"))));
  }
  if (!req.page_token().empty()) {
    ASSIGN_OR_RETURN(in.after, page_tokens_.Decode(req.page_token(), req));
  }
  in.deadline = deadline;
  MemoryBudget* const budget = options_.budget;

  // A page ends at page_size approvals, or before it outgrows what a default gRPC client
  // accepts (kMaxPageBytes), kMaxPageMemory, or what the memory budget has left: large
  // approvals make shorter pages, never an unreadable one. The first approval always fits the
  // sizes (a create is bounded well below them); if the budget cannot take even that, the call
  // is RESOURCE_EXHAUSTED.
  size_t bytes = 0, memory = 0;
  int taken = 0;
  bool more = false;
  db::ListCursor last;
  // One more than the page tells whether a next page exists.
  const size_t hint = std::max<size_t>(recent_row_bytes.load(std::memory_order_relaxed), 1);
  int read = static_cast<int>(
      std::clamp<size_t>(kFirstReadBytes / hint, 4, static_cast<size_t>(page_size + 1)));
  for (bool full = false; !full;) {
    in.limit = read;
    ASSIGN_OR_RETURN(std::vector<db::ApprovalRecord> rows, store_.List(in));
    size_t rows_held = 0;
    for (const db::ApprovalRecord& a : rows) rows_held += db::HeldBytes(a);
    if (!rows.empty()) recent_row_bytes.store(rows_held / rows.size(), std::memory_order_relaxed);
    if (budget != nullptr && !budget->TryTake(rows_held)) {
      if (taken == 0) return OverBudgetError();
      more = true;
      break;
    }
    for (const db::ApprovalRecord& a : rows) {
      if (taken == page_size) {  // the one more: a next page exists
        more = full = true;
        break;
      }
      v1::Approval* out = resp->add_approvals();
      absl::Status converted = ToProto(a, out);
      const size_t used = out->SpaceUsedLong();
      bytes += out->ByteSizeLong() + 8;
      const bool fits = bytes <= kMaxPageBytes && memory + used <= kMaxPageMemory;
      if (!converted.ok() || (taken > 0 && !fits) ||
          (budget != nullptr && !budget->TryTake(used))) {
        resp->mutable_approvals()->RemoveLast();
        if (budget != nullptr) budget->Give(rows_held);
        rows_held = 0;
        if (!converted.ok()) return converted;
        if (taken == 0) return OverBudgetError();
        more = full = true;
        break;
      }
      if (budget != nullptr) *held += used;
      memory += used;
      ++taken;
      last = {absl::ToUnixMicros(a.create_time), a.id};
    }
    if (budget != nullptr) budget->Give(rows_held);  // the records are converted or dropped
    if (full || static_cast<int>(rows.size()) < read) break;  // else: the table holds no more
    // Read on after the last row, sized by what the approvals so far take in memory.
    in.after = last;
    const size_t per_row = std::max<size_t>(memory / static_cast<size_t>(taken), 1);
    const size_t room = memory < kMaxPageMemory ? (kMaxPageMemory - memory) / per_row : 0;
    read = static_cast<int>(
        std::clamp<size_t>(room + 1, 1, static_cast<size_t>(page_size - taken + 1)));
  }
  if (more && taken > 0) resp->set_next_page_token(page_tokens_.Encode(last, req));
  return absl::OkStatus();
}

}  // namespace approvald::server
