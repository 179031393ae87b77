#include "server/gateway/sse_stream.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "google/protobuf/message.h"
#include "server/api/call_metadata.h"
#include "server/gateway/transcoding.h"

namespace approvald::server {
namespace {

namespace pb = google::protobuf;

}  // namespace

SseStream::SseStream(std::shared_ptr<HttpExchange> exchange, const pb::MethodDescriptor& method,
                     std::function<void(SseStream*)> done)
    : exchange_(std::move(exchange)),
      method_(method),
      done_(std::move(done)),
      alive_(std::make_shared<Alive>()) {
  alive_->stream = this;
}

void SseStream::Start(grpc::GenericStub& stub, const std::string& request) {
  grpc::Slice slice(request);
  request_ = grpc::ByteBuffer(&slice, 1);
  stub.PrepareBidiStreamingCall(
      &context_, absl::StrCat("/", method_.service()->full_name(), "/", method_.name()),
      grpc::StubOptions(), this);
  StartWriteLast(&request_, grpc::WriteOptions());
  {
    std::lock_guard<std::mutex> lock(mu_);
    ReadNextLocked();
  }
  // A client that goes away cancels the call; the server side ends at once. The callbacks
  // may run on the HTTP thread while the call ends: they reach the stream only while it lives.
  exchange_->OnGone([alive = alive_] {
    std::lock_guard<std::mutex> lock(alive->mu);
    if (alive->stream != nullptr) alive->stream->context_.TryCancel();
  });
  exchange_->OnDrained([alive = alive_] {
    std::lock_guard<std::mutex> lock(alive->mu);
    if (alive->stream == nullptr) return;
    SseStream& s = *alive->stream;
    std::lock_guard<std::mutex> stream_lock(s.mu_);
    if (s.paused_) {
      s.paused_ = false;
      s.ReadNextLocked();
    }
  });
  StartCall();
}

void SseStream::ReadNextLocked() {
  if (reading_ || done_reading_) return;
  reading_ = true;
  StartRead(&response_);
}

void SseStream::KeepAlive() {
  std::lock_guard<std::mutex> lock(mu_);
  if (started_) exchange_->Write(": keep-alive\n\n");
}

void SseStream::OnReadInitialMetadataDone(bool ok) {
  if (!ok) return;
  const auto& md = context_.GetServerInitialMetadata();
  if (md.find(kStreamStartedKey) == md.end()) return;  // failed before it started: see OnDone
  HttpAnswer head{200, "text/event-stream; charset=utf-8", ": stream started\n\n", {}};
  head.headers.emplace_back("Cache-Control", "no-cache");
  head.headers.emplace_back("X-Accel-Buffering", "no");  // nginx: pass events on at once
  if (auto it = md.find("x-request-id"); it != md.end()) {
    head.headers.emplace_back("X-Request-Id", std::string(it->second.data(), it->second.size()));
  }
  std::lock_guard<std::mutex> lock(mu_);
  started_ = true;
  exchange_->StartStream(std::move(head));
}

void SseStream::OnReadDone(bool ok) {
  std::lock_guard<std::mutex> lock(mu_);
  reading_ = false;
  if (!ok) {
    done_reading_ = true;
    return;
  }
  std::unique_ptr<pb::Message> message(
      pb::MessageFactory::generated_factory()->GetPrototype(method_.output_type())->New());
  if (!message->ParseFromString(BufferBytes(response_))) {
    context_.TryCancel();
    return;
  }
  std::string frame;
  if (const pb::FieldDescriptor* id = method_.output_type()->FindFieldByName("event_id");
      id != nullptr && id->cpp_type() == pb::FieldDescriptor::CPPTYPE_INT64) {
    absl::StrAppend(&frame, "id: ", message->GetReflection()->GetInt64(*message, id), "\n");
  }
  absl::StrAppend(&frame, "data: ", ToJson(*message), "\n\n");
  if (!started_) {  // a message before the start marker: the stream is live all the same
    started_ = true;
    exchange_->StartStream(HttpAnswer{200, "text/event-stream; charset=utf-8", "", {}});
  }
  if (!exchange_->Write(frame)) return;  // the client is gone; OnGone cancels
  if (exchange_->Unsent() < kMaxUnsent) {
    ReadNextLocked();
  } else {
    paused_ = true;
  }
}

void SseStream::OnDone(const grpc::Status& status) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!started_) {
      exchange_->Answer(ErrorAnswer(status));
    } else {
      if (!status.ok() && status.error_code() != grpc::StatusCode::CANCELLED) {
        exchange_->Write(absl::StrCat("event: error\ndata: ", ErrorAnswer(status).body, "\n"));
      }
      exchange_->End();
    }
  }
  {
    std::lock_guard<std::mutex> lock(alive_->mu);
    alive_->stream = nullptr;
  }
  done_(this);
  delete this;
}

}  // namespace approvald::server
