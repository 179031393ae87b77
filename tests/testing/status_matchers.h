#pragma once

// Local stand-ins for absl/status/status_matchers.h, which the installed Abseil lacks.

#include <gtest/gtest.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace approvald::testing {

inline const absl::Status& GetStatus(const absl::Status& s) { return s; }
template <typename T>
const absl::Status& GetStatus(const absl::StatusOr<T>& s) {
  return s.status();
}

}  // namespace approvald::testing

#define EXPECT_OK(expr) \
  EXPECT_TRUE(::approvald::testing::GetStatus(expr).ok()) << ::approvald::testing::GetStatus(expr)
#define ASSERT_OK(expr) \
  ASSERT_TRUE(::approvald::testing::GetStatus(expr).ok()) << ::approvald::testing::GetStatus(expr)
#define ASSERT_OK_AND_ASSIGN(lhs, expr) \
  ASSERT_OK_AND_ASSIGN_IMPL(APPROVALD_TEST_CONCAT(_statusor_, __LINE__), lhs, expr)
#define APPROVALD_TEST_CONCAT_INNER(a, b) a##b
#define APPROVALD_TEST_CONCAT(a, b) APPROVALD_TEST_CONCAT_INNER(a, b)
#define ASSERT_OK_AND_ASSIGN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                              \
  ASSERT_TRUE(tmp.ok()) << tmp.status();          \
  lhs = std::move(*tmp)
#define EXPECT_CODE(expr, code_)                                 \
  EXPECT_EQ(::approvald::testing::GetStatus(expr).code(), code_) \
      << ::approvald::testing::GetStatus(expr)
