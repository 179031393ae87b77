#include "db/pg/pg_events.h"

#include "absl/strings/str_cat.h"
#include "db/pg/approval_row.h"
#include "db/queries.h"
#include "db/status_macros.h"

namespace approvald::db::pg {

absl::StatusOr<std::vector<EventRecord>> ReadEventBatch(PgConnection& conn, int64_t after_id,
                                                        int limit) {
  ASSIGN_OR_RETURN(Rows rows,
                   conn.Exec(queries::kReadEvents, {absl::StrCat(after_id), absl::StrCat(limit)}));
  std::vector<EventRecord> events;
  events.reserve(rows.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    ASSIGN_OR_RETURN(EventRecord e, ParseEventRow(rows, i));
    events.push_back(std::move(e));
  }
  return events;
}

absl::Status NameListenerSession(PgConnection& conn) {
  return conn.ExecScript(queries::kNameListener.text);
}

absl::StatusOr<int64_t> EventsHead(PgConnection& conn) {
  ASSIGN_OR_RETURN(Rows rows, conn.Exec(queries::kEventsHead, {}));
  return rows.GetInt(0, "head");
}

absl::StatusOr<int64_t> NewestEventId(PgConnection& conn) {
  ASSIGN_OR_RETURN(Rows rows, conn.Exec(queries::kNewestEvent, {}));
  return rows.GetInt(0, "newest");
}

}  // namespace approvald::db::pg
