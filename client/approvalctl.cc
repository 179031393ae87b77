// approvalctl: a command-line client for every ApprovalService RPC.

#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/time_util.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "client/approval_client.h"
#include "client/cli_args.h"
#include "client/event_stream.h"
#include "client/output.h"
#include "client/webhooks_command.h"
#include "client/work_command.h"

namespace {

namespace v1 = approvals::v1;
namespace pb = google::protobuf;
using approvald::client::ApprovalClient;
using approvald::client::CliArgs;

constexpr char kUsage[] =
    R"(usage: approvalctl [--addr HOST:PORT] [--token T] [--json] [--timeout 10s]
                   [--tls-ca PEM [--tls-cert PEM --tls-key PEM]] COMMAND

commands:
  create --type T [--data JSON] [--summary S] [--ttl 1h | --expire-time RFC3339]
         [--idempotency-key K]
  get ID
  list [--status pending,approved,...] [--type T] [--requested-by P] [--decided-by P]
       [--page-size N] [--page-token T] [--all]
  approve ID [--comment C] [--expected-version N] [--request-id R]
  reject ID --reason R [--expected-version N] [--request-id R]
  cancel ID [--reason R] [--expected-version N] [--request-id R]
  types                       the action types the server offers, with their policies
  watch [--after N] [--status S,...] [--type T] [--requested-by P] [--id ID,...] [--count N]
                              stream events; on a dropped stream, reconnect and resume
                              after the last event printed (with --id: from those
                              approvals' first event unless --after is given)
  wait ID [--timeout D]       block until the approval is decided (and its action executed,
                              for external types), then print it; exit 0 if approved and
                              executed, 1 if rejected, expired,
                              cancelled or failed, 2 if still pending after D (default:
                              no limit), 3 if it cannot be waited for (unknown id, ...)
  work --type T[,T2] [--concurrency N] [--lease D] [--fatal-exit 100] [--once] -- CMD ARGS...
                              run CMD once per approved execution of the types: the
                              approval as JSON on stdin, APPROVALD_IDEMPOTENCY_KEY (and
                              _EXECUTION_ID, _APPROVAL_ID, _ACTION_TYPE, _ATTEMPT) in its
                              environment; exit 0 completes it with stdout (JSON) as the
                              result, --fatal-exit fails it for good, anything else is
                              retried; the lease is extended while CMD runs
  webhooks list               the event webhook subscriptions: cursor, failures, dead letter
  webhooks redeliver NAME     resume a dead-lettered subscription at the event it stopped at
  token new --principal P [--roles r1,r2]

--token defaults to $APPROVALD_TOKEN; --addr to $APPROVALD_ADDR or 127.0.0.1:50051.
--tls-ca speaks TLS to the server (verified against that CA); --tls-cert/--tls-key add a client
certificate (mTLS).
Errors print the gRPC code and the ErrorInfo reason, and exit 1 (2 for usage errors).
)";

int Usage(const std::string& why) {
  std::cerr << "approvalctl: " << why << "\n\n" << kUsage;
  return 2;
}

std::string Env(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v && *v ? v : fallback;
}

bool ParseInt64(const CliArgs& args, const std::string& name, int64_t* out) {
  auto v = args.Get(name);
  if (!v) return true;
  return absl::SimpleAtoi(*v, out);
}

bool ReadPem(const std::optional<std::string>& path, std::string* out) {
  if (!path) return true;
  std::ifstream in(*path);
  if (!in) return false;
  std::stringstream buffer;
  buffer << in.rdbuf();
  *out = buffer.str();
  return true;
}

// Plaintext by default; TLS (and a client certificate) when --tls-ca is given.
std::shared_ptr<grpc::ChannelCredentials> Credentials(const CliArgs& args, std::string* error) {
  if (!args.Has("tls-ca")) {
    if (args.Has("tls-cert") || args.Has("tls-key")) *error = "--tls-cert/--tls-key need --tls-ca";
    return grpc::InsecureChannelCredentials();
  }
  grpc::SslCredentialsOptions options;
  if (!ReadPem(args.Get("tls-ca"), &options.pem_root_certs) ||
      !ReadPem(args.Get("tls-cert"), &options.pem_cert_chain) ||
      !ReadPem(args.Get("tls-key"), &options.pem_private_key)) {
    *error = "cannot read a --tls-* file";
  }
  return grpc::SslCredentials(options);
}

int TokenNew(const CliArgs& args) {
  auto principal = args.Get("principal");
  if (!principal || principal->empty()) return Usage("token new needs --principal");
  unsigned char bytes[32];
  if (RAND_bytes(bytes, sizeof(bytes)) != 1) {
    std::cerr << "approvalctl: no randomness available\n";
    return 1;
  }
  std::string token;
  absl::WebSafeBase64Escape(std::string(reinterpret_cast<char*>(bytes), sizeof(bytes)), &token);
  token = "apv_" + token;
  std::cout << "token: " << token << "\n";
  std::cout << "tokens-file line: " << approvald::client::Sha256Hex(token) << " " << *principal
            << " " << args.Get("roles").value_or("") << "\n";
  return 0;
}

int Create(ApprovalClient& client, const CliArgs& args, bool json) {
  v1::CreateApprovalRequest req;
  auto type = args.Get("type");
  if (!type) return Usage("create needs --type");
  req.set_action_type(*type);
  if (auto data = args.Get("data")) {
    auto st = pb::util::JsonStringToMessage(*data, req.mutable_action_data());
    if (!st.ok()) {
      // protobuf's messages can start with ": " (": Root element must be a message.").
      const std::string why(absl::StripLeadingAsciiWhitespace(
          absl::StripPrefix(absl::string_view(st.message().data(), st.message().size()), ":")));
      return Usage("--data must be a JSON object: " + why);
    }
  }
  req.set_summary(args.Get("summary").value_or(""));
  req.set_idempotency_key(args.Get("idempotency-key").value_or(""));
  if (auto ttl = args.Get("ttl")) {
    absl::Duration d;
    if (!absl::ParseDuration(*ttl, &d)) return Usage("--ttl must be a duration such as 90m or 24h");
    *req.mutable_ttl() = pb::util::TimeUtil::NanosecondsToDuration(absl::ToInt64Nanoseconds(d));
  }
  if (auto at = args.Get("expire-time")) {
    if (!pb::util::TimeUtil::FromString(*at, req.mutable_expire_time())) {
      return Usage("--expire-time must be RFC 3339, e.g. 2026-12-01T12:00:00Z");
    }
  }
  return approvald::client::PrintApprovalResult(client.Create(req), json);
}

// --status pending,approved -> enum values; returns the first unknown name, or "".
std::string ParseStatuses(const CliArgs& args, google::protobuf::RepeatedField<int>* out) {
  auto statuses = args.Get("status");
  if (!statuses) return "";
  for (absl::string_view s : absl::StrSplit(*statuses, ',', absl::SkipEmpty())) {
    v1::ApprovalStatus status;
    std::string name = "APPROVAL_STATUS_" + std::string(s);
    for (char& c : name) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    if (!v1::ApprovalStatus_Parse(name, &status)) return std::string(s);
    out->Add(status);
  }
  return "";
}

int List(ApprovalClient& client, const CliArgs& args, bool json) {
  v1::ListApprovalsRequest req;
  if (std::string bad = ParseStatuses(args, req.mutable_statuses()); !bad.empty()) {
    return Usage("unknown status: " + bad);
  }
  req.set_action_type(args.Get("type").value_or(""));
  req.set_requested_by(args.Get("requested-by").value_or(""));
  req.set_decided_by(args.Get("decided-by").value_or(""));
  int64_t page_size = 0;
  if (!ParseInt64(args, "page-size", &page_size)) return Usage("--page-size must be a number");
  req.set_page_size(static_cast<int32_t>(page_size));
  req.set_page_token(args.Get("page-token").value_or(""));
  const bool all = args.Has("all");
  v1::ListApprovalsResponse merged;
  for (;;) {
    auto page = client.List(req);
    if (!page.ok()) return approvald::client::PrintError(page.status(), json);
    for (auto& a : *page->mutable_approvals()) *merged.add_approvals() = std::move(a);
    merged.set_next_page_token(page->next_page_token());
    if (!all || page->next_page_token().empty()) break;
    req.set_page_token(page->next_page_token());
  }
  approvald::client::PrintList(merged, json);
  return 0;
}

int Watch(const std::shared_ptr<grpc::Channel>& channel, const std::string& token,
          const CliArgs& args, bool json) {
  v1::WatchApprovalsRequest req;
  int64_t after = 0, count = 0;
  if (!ParseInt64(args, "after", &after) || after < 0) return Usage("--after must be an event id");
  if (!ParseInt64(args, "count", &count) || count < 0) return Usage("--count must be a number");
  if (std::string bad = ParseStatuses(args, req.mutable_statuses()); !bad.empty()) {
    return Usage("unknown status: " + bad);
  }
  req.set_action_type(args.Get("type").value_or(""));
  req.set_requested_by(args.Get("requested-by").value_or(""));
  if (auto ids = args.Get("id")) {
    for (absl::string_view id : absl::StrSplit(*ids, ',', absl::SkipEmpty())) {
      req.add_approval_ids(std::string(id));
    }
  }
  req.set_after_event_id(after);
  auto stub = v1::ApprovalService::NewStub(channel);
  int64_t printed = 0;
  const absl::Status st = approvald::client::FollowEvents(
      *stub, token, req, absl::InfiniteFuture(), [&](const v1::ApprovalEvent& event) {
        approvald::client::PrintEvent(event, json);
        return count == 0 || ++printed < count;
      });
  return st.ok() ? 0 : approvald::client::PrintError(st, json);
}

// Exit codes: 0 approved (and executed), 1 decided otherwise, 2 timed out, 3 cannot wait (an
// unknown id, no access).
int Wait(ApprovalClient& client, const std::shared_ptr<grpc::Channel>& channel,
         const std::string& token, const CliArgs& args, absl::Time deadline, bool json) {
  if (args.positional.size() < 2) return Usage("wait needs an approval ID");
  const std::string& id = args.positional[1];
  auto exit_code = [&](const v1::Approval& a) {
    approvald::client::PrintApprovalResult(a, json);
    return a.status() == v1::APPROVAL_STATUS_APPROVED ? 0 : 1;
  };
  absl::StatusOr<v1::Approval> now = client.Get(id);
  if (!now.ok()) {
    approvald::client::PrintError(now.status(), json);
    return now.status().code() == absl::StatusCode::kDeadlineExceeded ? 2 : 3;
  }
  if (approvald::client::IsFinal(*now)) return exit_code(*now);
  v1::WatchApprovalsRequest req;
  req.add_approval_ids(now->id());  // from its first event: no decision can slip past
  auto stub = v1::ApprovalService::NewStub(channel);
  std::optional<v1::Approval> final_state;
  const absl::Status st = approvald::client::FollowEvents(
      *stub, token, req, deadline, [&](const v1::ApprovalEvent& event) {
        if (!approvald::client::IsFinal(event.approval())) return true;
        final_state = event.approval();
        return false;
      });
  if (final_state) return exit_code(*final_state);
  if (st.code() == absl::StatusCode::kDeadlineExceeded) {
    std::cerr << "approvalctl: approval " << id << " is still pending\n";
    return 2;
  }
  approvald::client::PrintError(st, json);
  return 3;
}

int Decide(ApprovalClient& client, const std::string& command, const CliArgs& args, bool json) {
  if (args.positional.size() < 2) return Usage(command + " needs an approval ID");
  const std::string& id = args.positional[1];
  int64_t version = 0;
  if (!ParseInt64(args, "expected-version", &version)) {
    return Usage("--expected-version must be a number");
  }
  const std::string request_id = args.Get("request-id").value_or("");
  if (command == "approve") {
    v1::ApproveRequest req;
    req.set_id(id);
    req.set_expected_version(version);
    req.set_comment(args.Get("comment").value_or(""));
    req.set_request_id(request_id);
    return approvald::client::PrintApprovalResult(client.Approve(req), json);
  }
  if (command == "reject") {
    if (!args.Get("reason")) return Usage("reject needs --reason");
    v1::RejectRequest req;
    req.set_id(id);
    req.set_reason(args.Get("reason").value_or(""));
    req.set_expected_version(version);
    req.set_request_id(request_id);
    return approvald::client::PrintApprovalResult(client.Reject(req), json);
  }
  v1::CancelApprovalRequest req;
  req.set_id(id);
  req.set_reason(args.Get("reason").value_or(""));
  req.set_expected_version(version);
  req.set_request_id(request_id);
  return approvald::client::PrintApprovalResult(client.Cancel(req), json);
}

}  // namespace

int main(int argc, char** argv) {
  // `work ... -- CMD ARGS`: what follows `--` is the program's, never approvalctl's options.
  int own = argc;
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--") {
      own = i;
      break;
    }
  }
  const CliArgs args = CliArgs::Parse(own, argv, {"json", "all", "help", "once"});
  if (args.Has("help") || args.positional.empty()) {
    std::cout << kUsage;
    return args.positional.empty() && !args.Has("help") ? 2 : 0;
  }
  const std::string command = args.positional[0];
  if (command == "token") {
    if (args.positional.size() == 2 && args.positional[1] == "new") return TokenNew(args);
    return Usage("unknown token command (try: token new --principal P)");
  }
  const bool json = args.Has("json");
  absl::Duration timeout = absl::Seconds(10);
  if (auto t = args.Get("timeout"); t && !absl::ParseDuration(*t, &timeout)) {
    return Usage("--timeout must be a duration such as 10s");
  }
  const std::string addr = args.Get("addr").value_or(Env("APPROVALD_ADDR", "127.0.0.1:50051"));
  const std::string token = args.Get("token").value_or(Env("APPROVALD_TOKEN", ""));
  std::string error;
  std::shared_ptr<grpc::ChannelCredentials> creds = Credentials(args, &error);
  if (!error.empty()) return Usage(error);
  // Reconnect within seconds once a restarted server is back (gRPC's default backoff grows to
  // two minutes): a waiting `wait` or `work` resumes promptly.
  grpc::ChannelArguments channel_args;
  channel_args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 500);
  channel_args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 5000);
  std::shared_ptr<grpc::Channel> channel = grpc::CreateCustomChannel(addr, creds, channel_args);
  ApprovalClient client(channel, token, timeout);
  if (command == "create") return Create(client, args, json);
  if (command == "get") {
    if (args.positional.size() < 2) return Usage("get needs an approval ID");
    return approvald::client::PrintApprovalResult(client.Get(args.positional[1]), json);
  }
  if (command == "list") return List(client, args, json);
  if (command == "watch") return Watch(channel, token, args, json);
  if (command == "wait") {
    // --timeout bounds the whole wait here (each call's own deadline stays 10 s at most).
    const bool bounded = args.Get("timeout").has_value();
    ApprovalClient bounded_client(channel, token, std::min(timeout, absl::Seconds(10)));
    return Wait(bounded_client, channel, token, args,
                bounded ? absl::Now() + timeout : absl::InfiniteFuture(), json);
  }
  if (command == "work") {
    approvald::client::WorkOptions work;
    work.action_types = absl::StrSplit(args.Get("type").value_or(""), ',', absl::SkipEmpty());
    for (int i = own + 1; i < argc; ++i) work.command.emplace_back(argv[i]);
    if (work.action_types.empty()) return Usage("work needs --type T");
    if (work.command.empty()) return Usage("work needs a program after --: work --type T -- CMD");
    if (auto c = args.Get("concurrency"); c && (!absl::SimpleAtoi(*c, &work.concurrency) ||
                                                work.concurrency < 1 || work.concurrency > 256)) {
      return Usage("--concurrency must be 1 to 256");
    }
    if (auto l = args.Get("lease"); l && !absl::ParseDuration(*l, &work.lease)) {
      return Usage("--lease must be a duration such as 30s");
    }
    if (auto f = args.Get("fatal-exit");
        f && (!absl::SimpleAtoi(*f, &work.fatal_exit_code) || work.fatal_exit_code < 1 ||
              work.fatal_exit_code > 255)) {
      return Usage("--fatal-exit must be an exit code, 1 to 255");
    }
    work.once = args.Has("once");
    return approvald::client::RunWork(channel, token, work);
  }
  if (command == "types") {
    auto types = client.ListActionTypes();
    if (!types.ok()) return approvald::client::PrintError(types.status(), json);
    approvald::client::PrintActionTypes(*types, json);
    return 0;
  }
  if (command == "approve" || command == "reject" || command == "cancel") {
    return Decide(client, command, args, json);
  }
  if (command == "webhooks") {
    return approvald::client::RunWebhooks(
        channel, token, timeout, {args.positional.begin() + 1, args.positional.end()}, json);
  }
  return Usage("unknown command: " + command);
}
