#include "server/webhooks/webhook_actions.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "absl/random/random.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "handlers/external_handler.h"
#include "handlers/webhook_target.h"
#include "server/api/proto_convert.h"
#include "server/webhooks/http_post.h"
#include "server/webhooks/signing.h"
#include "server/webhooks/webhook_messages.h"

namespace approvald::server {
namespace {

// How long Stop lets a post in flight finish before abandoning it.
constexpr absl::Duration kStopGrace = absl::Seconds(2);
constexpr absl::Duration kIdle = absl::Seconds(1);
constexpr absl::Duration kStoreTimeout = absl::Seconds(10);
constexpr size_t kErrorBodyBytes = 1000;

// A 4xx other than 408 (timeout) and 429 (slow down) says the request itself is refused:
// sending it again would not help.
bool FailsForGood(long status) {
  return status >= 400 && status < 500 && status != 408 && status != 429;
}

// The execution's result: the answer's JSON object, or its status and text.
std::string ResultOf(const PostAnswer& answer) {
  if (absl::StrContains(answer.content_type, "json") && JsonToStruct(answer.body).ok()) {
    return answer.body;
  }
  google::protobuf::Struct result;
  (*result.mutable_fields())["httpStatus"].set_number_value(static_cast<double>(answer.status));
  (*result.mutable_fields())["body"].set_string_value(BodyExcerpt(answer.body, kMaxAnswerBytes));
  absl::StatusOr<std::string> json = StructToJson(result);
  return json.ok() ? *json : "{}";
}

}  // namespace

WebhookActions::WebhookActions(db::ExecutionStore& store, std::string worker, EventHub* hub,
                               std::shared_ptr<spdlog::logger> logger, int threads)
    : store_(store),
      worker_(std::move(worker)),
      hub_(hub),
      logger_(std::move(logger)),
      threads_count_(std::max(1, threads)) {}

WebhookActions::~WebhookActions() { Stop(); }

void WebhookActions::SetRegistry(std::shared_ptr<const handlers::HandlerRegistry> registry) {
  std::set<std::string> types;
  for (const handlers::ActionType* t : registry->All()) {
    if (t->handler->webhook() != nullptr) types.insert(t->name);
  }
  const bool any = !types.empty();
  {
    std::lock_guard<std::mutex> lock(mu_);
    registry_ = std::move(registry);
  }
  {
    std::lock_guard<std::mutex> lock(types_mu_);
    webhook_types_ = std::move(types);
  }
  // The threads (and their wake-ups, which keep the event hub polling) only once a config has
  // webhook types; a reload that removes them leaves the threads idle.
  std::lock_guard<std::mutex> lock(start_mu_);
  if (!any || stopped_ || !threads_.empty()) return;
  // Woken by what makes an execution of such a type due: an approval, or a retry.
  wakeup_ = std::make_unique<LogWakeup>(hub_, [this](const approvals::v1::ApprovalEvent& e) {
    if (e.type() != approvals::v1::EVENT_TYPE_APPROVED &&
        e.type() != approvals::v1::EVENT_TYPE_EXECUTION_RETRY) {
      return false;
    }
    std::lock_guard<std::mutex> types_lock(types_mu_);
    return webhook_types_.count(e.approval().action_type()) > 0;
  });
  for (int i = 0; i < threads_count_; ++i) threads_.emplace_back([this] { Run(); });
}

std::shared_ptr<const handlers::HandlerRegistry> WebhookActions::registry() const {
  std::lock_guard<std::mutex> lock(mu_);
  return registry_;
}

void WebhookActions::Stop() {
  std::lock_guard<std::mutex> lock(start_mu_);
  stopped_ = true;
  abandon_at_ = absl::ToUnixNanos(absl::Now() + kStopGrace);
  if (wakeup_) wakeup_->Stop();
  for (std::thread& t : threads_) t.join();
  threads_.clear();
  wakeup_.reset();
}

void WebhookActions::Count(const std::string& type, const std::string& result) {
  std::lock_guard<std::mutex> lock(mu_);
  ++attempts_[{type, result}];
}

void WebhookActions::Run() {
  LogWakeup& wake = *wakeup_;
  HttpClient http;
  while (!wake.stopped()) {
    const uint64_t seen = wake.generation();
    const std::shared_ptr<const handlers::HandlerRegistry> registry = this->registry();
    db::ClaimInput in;
    for (const handlers::ActionType* t : registry->All()) {
      if (t->handler->webhook() == nullptr) continue;
      in.action_types.push_back(t->name);
      in.lease = std::max(in.lease, t->handler->executor()->lease);
    }
    if (in.action_types.empty()) {
      wake.Wait(seen, kIdle);
      continue;
    }
    in.max = 1;
    in.worker = worker_;
    in.deadline = absl::Now() + kStoreTimeout;
    absl::StatusOr<db::ClaimResult> claim = store_.Claim(in);
    if (!claim.ok()) {
      if (logger_)
        logger_->warn("webhook actions: claim: {}", std::string(claim.status().message()));
      wake.Sleep(kIdle);
      continue;
    }
    if (claim->claimed.empty()) {
      wake.Wait(seen, std::min(kIdle, claim->next_due.value_or(kIdle)));
      continue;
    }
    if (hub_ != nullptr) hub_->Poke();  // the claim wrote EXECUTION_STARTED events
    for (const db::ExecutionRecord& x : claim->claimed) {
      const handlers::ActionType* type = registry->Find(x.approval.action_type);
      if (type != nullptr && type->handler->webhook() != nullptr) {
        Attempt(http, *type, x, in.action_types);
      }
    }
  }
}

void WebhookActions::Attempt(HttpClient& http, const handlers::ActionType& type,
                             const db::ExecutionRecord& x, const std::vector<std::string>& types) {
  const handlers::WebhookTarget& target = *type.handler->webhook();
  const handlers::ExecutorPolicy policy = *type.handler->executor();
  db::LeaseCall call;
  call.execution_id = x.id;
  call.lease_token = x.lease_token.value_or("");
  call.worker = worker_;
  call.types = types;
  const db::MayExecute may = [](const std::string&) { return absl::OkStatus(); };

  absl::StatusOr<PostAnswer> answer = absl::InternalError("no body");
  if (absl::StatusOr<std::string> body = ActionBody(x); body.ok()) {
    const int64_t timestamp = absl::ToUnixSeconds(absl::Now());
    PostRequest post;
    post.url = target.url;
    post.headers = {{"Idempotency-Key", x.id},
                    {"webhook-id", x.id},
                    {"webhook-timestamp", absl::StrCat(timestamp)},
                    {"webhook-signature", WebhookSignature(target.keys, x.id, timestamp, *body)}};
    post.body = std::move(*body);
    post.timeout = target.timeout;
    post.ca_file = target.ca_file;
    post.abandon_at = &abandon_at_;
    answer = http.Post(post);
  } else {
    answer = body.status();
  }
  call.deadline = absl::Now() + kStoreTimeout;
  absl::Status stored;
  std::string outcome;
  if (answer.ok() && answer->status >= 200 && answer->status < 300) {
    outcome = "succeeded";
    stored = store_.Complete(call, ResultOf(*answer), may).status();
  } else {
    std::string error = answer.ok() ? absl::StrCat("HTTP ", answer->status, ": ",
                                                   BodyExcerpt(answer->body, kErrorBodyBytes))
                                    : std::string(answer.status().message());
    db::RetryDelay retry;
    outcome = "failed";
    if (!answer.ok() || !FailsForGood(answer->status)) {
      outcome = "retry";
      retry = [policy](int attempt) {
        absl::BitGen bits;
        return policy.backoff.Delay(attempt, absl::Uniform(bits, 0.0, 1.0));
      };
    }
    if (logger_) {
      logger_->warn("webhook action {} execution {} attempt {}: {}", type.name, x.id, x.attempt,
                    error);
    }
    stored = store_.Fail(call, error, retry, may).status();
  }
  Count(type.name, outcome);
  if (!stored.ok() && logger_) {
    // The lease ran out meanwhile, or the database is away: the execution is run again later
    // under the same idempotency key.
    logger_->warn("webhook action {} execution {}: not recorded: {}", type.name, x.id,
                  std::string(stored.message()));
  }
  if (hub_ != nullptr) hub_->Poke();
}

std::string WebhookActions::RenderMetrics() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (attempts_.empty()) return "";
  std::string out =
      "# HELP approvald_webhook_action_attempts_total Attempts at webhook actions by this "
      "replica, by action type and outcome (succeeded, retry, failed).\n"
      "# TYPE approvald_webhook_action_attempts_total counter\n";
  for (const auto& [key, n] : attempts_) {
    absl::StrAppend(&out, "approvald_webhook_action_attempts_total{action_type=\"", key.first,
                    "\",outcome=\"", key.second, "\"} ", n, "\n");
  }
  return out;
}

}  // namespace approvald::server
