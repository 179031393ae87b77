#include "tests/testing/pg_fixture.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <mutex>
#include <random>

#include "absl/strings/str_cat.h"
#include "db/migrations.h"
#include "db/pg/migrator.h"
#include "db/query.h"

namespace approvald::testing {
namespace {

std::string BaseDsn() {
  const char* dsn = std::getenv("APPROVALD_TEST_DSN");
  return dsn ? dsn : "";
}

std::unique_ptr<db::pg::PgConnection> MustConnect(const std::string& dsn) {
  auto conn = db::pg::PgConnection::Connect(dsn);
  if (!conn.ok()) {
    ADD_FAILURE() << "cannot connect to " << dsn << ": " << conn.status();
    return nullptr;
  }
  return std::move(*conn);
}

// Builds the migrated template once per test process.
std::string TemplateName() {
  static std::once_flag once;
  static std::string* name = new std::string();
  std::call_once(once, [] {
    std::string candidate = absl::StrCat("approvald_tpl_", getpid(), "_", std::random_device{}());
    auto admin = MustConnect(BaseDsn());
    if (!admin) return;
    if (auto st = admin->ExecScript(absl::StrCat("CREATE DATABASE ", candidate)); !st.ok()) {
      ADD_FAILURE() << st;
      return;
    }
    auto conn = MustConnect(DsnFor(candidate));
    if (!conn) return;
    auto applied = db::pg::Migrate(*conn, db::Migrations());
    if (!applied.ok()) {
      ADD_FAILURE() << applied.status();
      return;
    }
    *name = candidate;
  });
  return *name;
}

}  // namespace

std::string DsnFor(const std::string& dbname) {
  return absl::StrCat(BaseDsn(), " dbname=", dbname);
}

std::unique_ptr<TestDatabase> TestDatabase::Create() {
  if (BaseDsn().empty()) {
    ADD_FAILURE() << "APPROVALD_TEST_DSN is not set: run the tests with tests/run, which starts "
                     "a throwaway PostgreSQL";
    return nullptr;
  }
  const std::string tpl = TemplateName();
  if (tpl.empty()) return nullptr;
  static std::atomic<int> counter{0};
  auto db = std::unique_ptr<TestDatabase>(new TestDatabase());
  db->name_ = absl::StrCat("approvald_t_", getpid(), "_", counter++);
  auto admin = MustConnect(BaseDsn());
  if (!admin) return nullptr;
  if (auto st = admin->ExecScript(absl::StrCat("CREATE DATABASE ", db->name_, " TEMPLATE ", tpl));
      !st.ok()) {
    ADD_FAILURE() << st;
    return nullptr;
  }
  db->dsn_ = DsnFor(db->name_);
  return db;
}

TestDatabase::~TestDatabase() {
  if (name_.empty()) return;
  if (auto admin = db::pg::PgConnection::Connect(BaseDsn()); admin.ok()) {
    (void)(*admin)->ExecScript(absl::StrCat("DROP DATABASE IF EXISTS ", name_, " WITH (FORCE)"));
  }
}

std::unique_ptr<db::pg::PgConnection> TestDatabase::Connect() const { return MustConnect(dsn_); }

std::string TestDatabase::Scalar(const std::string& sql) const {
  auto conn = Connect();
  if (!conn) return "";
  auto rows = conn->Exec(db::Query{"", sql}, {});
  if (!rows.ok()) {
    ADD_FAILURE() << sql << ": " << rows.status();
    return "";
  }
  if (rows->empty() || rows->columns().empty()) return "";
  return rows->GetString(0, rows->columns()[0]);
}

}  // namespace approvald::testing
