#pragma once

#include <memory>
#include <string>

#include "db/pg/pg_connection.h"

namespace approvald::testing {

/// A fresh, migrated database per test on the PostgreSQL that tests/run started
/// (APPROVALD_TEST_DSN). Without that variable the test fails: database tests never skip.
class TestDatabase {
 public:
  /// Creates the database (from a migrated template made once per process). Fails the test
  /// (ADD_FAILURE) and returns nullptr on error.
  static std::unique_ptr<TestDatabase> Create();
  ~TestDatabase();

  const std::string& dsn() const { return dsn_; }
  /// A new direct connection to the test database (for setup and checks in tests).
  std::unique_ptr<db::pg::PgConnection> Connect() const;
  /// Runs one SQL statement and returns the first column of the first row ("" if none).
  std::string Scalar(const std::string& sql) const;

 private:
  std::string name_;
  std::string dsn_;
};

/// The server DSN from APPROVALD_TEST_DSN with dbname replaced.
std::string DsnFor(const std::string& dbname);

}  // namespace approvald::testing
