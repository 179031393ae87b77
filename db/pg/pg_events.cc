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

namespace {

class PgEventLogReader final : public EventLogReader {
 public:
  explicit PgEventLogReader(std::unique_ptr<PgConnection> conn) : conn_(std::move(conn)) {}
  absl::StatusOr<int64_t> Head() override { return EventsHead(*conn_); }
  absl::StatusOr<std::vector<EventRecord>> Read(int64_t after_id, int limit) override {
    return ReadEventBatch(*conn_, after_id, limit);
  }
  absl::StatusOr<int64_t> Newest() override { return NewestEventId(*conn_); }

 private:
  std::unique_ptr<PgConnection> conn_;
};

}  // namespace

EventLogConnector PgEventLogConnector(std::string dsn, std::string schema) {
  return [dsn = std::move(dsn),
          schema = std::move(schema)]() -> absl::StatusOr<std::unique_ptr<EventLogReader>> {
    ASSIGN_OR_RETURN(std::unique_ptr<PgConnection> conn, PgConnection::Connect(dsn, schema));
    RETURN_IF_ERROR(NameListenerSession(*conn));
    return std::make_unique<PgEventLogReader>(std::move(conn));
  };
}

}  // namespace approvald::db::pg
