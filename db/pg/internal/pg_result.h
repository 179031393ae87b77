#pragma once

// libpq types are visible only inside db/pg/*.cc through this internal header.

#include <libpq-fe.h>

#include <memory>

namespace approvald::db::pg {

struct PgResultClearer {
  void operator()(PGresult* result) const { PQclear(result); }
};
using PgResultPtr = std::unique_ptr<PGresult, PgResultClearer>;

}  // namespace approvald::db::pg
