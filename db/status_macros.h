#pragma once

// Local equivalents of ABSL_RETURN_IF_ERROR / ABSL_ASSIGN_OR_RETURN, which the installed Abseil
// (20220623) does not ship.

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define APPROVALD_CONCAT_INNER(a, b) a##b
#define APPROVALD_CONCAT(a, b) APPROVALD_CONCAT_INNER(a, b)

#define RETURN_IF_ERROR(expr)                               \
  do {                                                      \
    if (::absl::Status _st = (expr); !_st.ok()) return _st; \
  } while (0)

#define ASSIGN_OR_RETURN(lhs, expr) \
  ASSIGN_OR_RETURN_IMPL(APPROVALD_CONCAT(_status_or_, __LINE__), lhs, expr)

#define ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr)    \
  auto tmp = (expr);                             \
  if (!tmp.ok()) return std::move(tmp).status(); \
  lhs = std::move(*tmp)
