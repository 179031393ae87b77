#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "db/approval.h"

namespace approvald::db {

/// A reader of the durable event log on a connection of its own (outside the pool), for the one
/// thread that follows the log (the daemon's event hub). Not thread-safe. An event is
/// deliverable once no older transaction is running (0003_event_stream.sql), so that reading
/// "after K" never skips one. Errors: UNAVAILABLE (the connection is lost: open a new reader).
class EventLogReader {
 public:
  virtual ~EventLogReader() = default;
  /// The newest deliverable event id (0 if none).
  virtual absl::StatusOr<int64_t> Head() = 0;
  /// Up to `limit` deliverable events after `after_id`, in id order.
  virtual absl::StatusOr<std::vector<EventRecord>> Read(int64_t after_id, int limit) = 0;
  /// The newest committed event id, deliverable or not (0 if none): above the head, an event is
  /// held back behind an older transaction that is still running.
  virtual absl::StatusOr<int64_t> Newest() = 0;
};

/// Opens a new reader; UNAVAILABLE if the database cannot be reached.
using EventLogConnector = std::function<absl::StatusOr<std::unique_ptr<EventLogReader>>()>;

}  // namespace approvald::db
