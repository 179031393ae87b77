#pragma once

#include <vector>

#include "absl/status/statusor.h"
#include "db/approval.h"
#include "db/pg/pg_connection.h"

namespace approvald::db::pg {

/// Up to `limit` deliverable events after `after_id` (read_events.sql).
absl::StatusOr<std::vector<EventRecord>> ReadEventBatch(PgConnection& conn, int64_t after_id,
                                                        int limit);
/// True if committed events after `after_id` wait for an older running transaction.
absl::StatusOr<bool> EventsHeldBack(PgConnection& conn, int64_t after_id);
/// Makes `conn` the event listener: names its session and LISTENs for new events.
absl::Status ListenForEvents(PgConnection& conn);
/// Stops the LISTEN of ListenForEvents (the session keeps its name).
absl::Status UnlistenEvents(PgConnection& conn);
/// The newest deliverable event id (0 if none).
absl::StatusOr<int64_t> EventsHead(PgConnection& conn);

}  // namespace approvald::db::pg
