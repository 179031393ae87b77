#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "db/approval.h"
#include "db/event_log.h"
#include "db/pg/pg_connection.h"

namespace approvald::db::pg {

/// Up to `limit` deliverable events after `after_id` (read_events.sql).
absl::StatusOr<std::vector<EventRecord>> ReadEventBatch(PgConnection& conn, int64_t after_id,
                                                        int limit);
/// Names `conn`'s session 'approvald-listener' (pg_stat_activity's application_name).
absl::Status NameListenerSession(PgConnection& conn);
/// The newest deliverable event id (0 if none).
absl::StatusOr<int64_t> EventsHead(PgConnection& conn);
/// The newest committed event id, deliverable or not (0 if none).
absl::StatusOr<int64_t> NewestEventId(PgConnection& conn);

/// Readers of the event log on connections of their own to `dsn` (their sessions named
/// 'approvald-listener').
EventLogConnector PgEventLogConnector(std::string dsn, std::string schema = kDefaultSchema);

}  // namespace approvald::db::pg
