#include "client/output.h"

#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/time_util.h>
#include <openssl/sha.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "client/approval_client.h"

namespace approvald::client {

namespace v1 = approvals::v1;
namespace pb = google::protobuf;

namespace {

std::string Json(const pb::Message& m) {
  std::string out;
  pb::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  (void)pb::util::MessageToJsonString(m, &out, options);
  return out;
}

std::string ShortStatus(v1::ApprovalStatus s) {
  std::string name = v1::ApprovalStatus_Name(s);
  const std::string prefix = "APPROVAL_STATUS_";
  return name.rfind(prefix, 0) == 0 ? name.substr(prefix.size()) : name;
}

std::string Time(const pb::Timestamp& ts, bool set) {
  return set ? pb::util::TimeUtil::ToString(ts) : "-";
}

}  // namespace

std::string Sha256Hex(const std::string& data) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest);
  std::string out;
  for (unsigned char b : digest) out += absl::StrFormat("%02x", b);
  return out;
}

int PrintError(const absl::Status& status, bool json) {
  const std::string code = absl::StatusCodeToString(status.code());
  const std::string reason = ReasonOf(status);
  if (json) {
    pb::Struct err;
    (*err.mutable_fields())["code"].set_string_value(code);
    (*err.mutable_fields())["reason"].set_string_value(reason);
    (*err.mutable_fields())["message"].set_string_value(std::string(status.message()));
    std::cerr << Json(err) << "\n";
  } else {
    std::cerr << "error: " << code << (reason.empty() ? "" : " " + reason) << ": "
              << status.message() << "\n";
  }
  return 1;
}

int PrintApprovalResult(const absl::StatusOr<v1::Approval>& result, bool json) {
  if (!result.ok()) return PrintError(result.status(), json);
  const v1::Approval& a = *result;
  if (json) {
    std::cout << Json(a) << "\n";
    return 0;
  }
  auto row = [](const char* k, const std::string& v) {
    if (!v.empty() && v != "-") std::cout << absl::StrFormat("%-17s %s\n", k, v);
  };
  row("id:", a.id());
  row("status:", ShortStatus(a.status()));
  row("action_type:", a.action_type());
  row("action_data:", Json(a.action_data()));
  row("summary:", a.summary());
  row("requested_by:", a.requested_by());
  row("idempotency_key:", a.idempotency_key());
  row("version:", std::to_string(a.version()));
  row("create_time:", Time(a.create_time(), a.has_create_time()));
  row("expire_time:", Time(a.expire_time(), a.has_expire_time()));
  row("decided_by:", a.decided_by());
  row("decide_time:", Time(a.decide_time(), a.has_decide_time()));
  row("decision_reason:", a.decision_reason());
  row("execute_time:", Time(a.execute_time(), a.has_execute_time()));
  if (a.has_execution_result()) row("execution_result:", Json(a.execution_result()));
  row("execution_error:", a.execution_error());
  for (const v1::Vote& v : a.votes()) {
    row("vote:", absl::StrCat(v.voter(), " at ", pb::util::TimeUtil::ToString(v.vote_time()),
                              v.comment().empty() ? "" : " (" + v.comment() + ")"));
  }
  return 0;
}

void PrintEvent(const v1::ApprovalEvent& e, bool json) {
  if (json) {
    std::cout << Json(e) << std::endl;
    return;
  }
  std::string type = v1::EventType_Name(e.type());
  if (type.rfind("EVENT_TYPE_", 0) == 0) type = type.substr(11);
  std::cout << absl::StrFormat("%d  %s  %-9s  %-36s  %-9s  v%d  %-20s  by %s  %s", e.event_id(),
                               pb::util::TimeUtil::ToString(e.event_time()).substr(0, 19), type,
                               e.approval().id(), ShortStatus(e.approval().status()),
                               e.approval().version(), e.approval().action_type(), e.actor(),
                               e.approval().summary())
            << std::endl;
}

void PrintActionTypes(const v1::ListActionTypesResponse& types, bool json) {
  if (json) {
    std::cout << Json(types) << "\n";
    return;
  }
  std::cout << absl::StrFormat("%-24s  %-9s  %-20s  %-8s  %s\n", "TYPE", "APPROVALS",
                               "APPROVER_ROLES", "MAX_TTL", "PARAMETERS");
  for (const v1::ActionType& t : types.action_types()) {
    std::vector<std::string> params;
    const auto& fields = t.parameters_schema().fields();
    if (auto it = fields.find("properties"); it != fields.end()) {
      for (const auto& [name, spec] : it->second.struct_value().fields()) {
        params.push_back(
            absl::StrCat(name, ":", spec.struct_value().fields().at("type").string_value()));
      }
    }
    std::sort(params.begin(), params.end());
    std::cout << absl::StrFormat(
        "%-24s  %-9d  %-20s  %-8s  %s\n", t.name(), t.required_approvals(),
        t.approver_roles().empty() ? "-" : absl::StrJoin(t.approver_roles(), ","),
        absl::FormatDuration(absl::Seconds(t.max_ttl().seconds())), absl::StrJoin(params, " "));
  }
}

void PrintList(const v1::ListApprovalsResponse& page, bool json) {
  if (json) {
    std::cout << Json(page) << "\n";
    return;
  }
  std::cout << absl::StrFormat("%-36s  %-9s  %-20s  %-12s  %-20s  %s\n", "ID", "STATUS", "TYPE",
                               "REQUESTED_BY", "CREATED", "SUMMARY");
  for (const v1::Approval& a : page.approvals()) {
    std::cout << absl::StrFormat(
        "%-36s  %-9s  %-20s  %-12s  %-20s  %s\n", a.id(), ShortStatus(a.status()), a.action_type(),
        a.requested_by(), pb::util::TimeUtil::ToString(a.create_time()).substr(0, 19), a.summary());
  }
  if (!page.next_page_token().empty()) {
    std::cout << "next page: --page-token " << page.next_page_token() << "\n";
  }
}

}  // namespace approvald::client
