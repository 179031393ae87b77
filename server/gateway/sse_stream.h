#pragma once

#include <grpcpp/client_context.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/support/byte_buffer.h>

#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "google/protobuf/descriptor.h"
#include "server/ops/http_exchange.h"

namespace approvald::server {

/// A server-streaming call relayed as Server-Sent Events: each message becomes `id: <event_id>`
/// (when the message has that field) and `data: <JSON>`; a call that fails before the stream
/// starts answers its HTTP error status, one that fails later ends with an `event: error`
/// whose data is the google.rpc.Status. Reads only as fast as the client takes the bytes.
/// Deletes itself when the call is done, after calling `done`.
class SseStream final : public grpc::ClientBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  /// Bytes written to the client and not yet sent beyond which the next message waits.
  static constexpr size_t kMaxUnsent = 256 * 1024;

  SseStream(std::shared_ptr<HttpExchange> exchange,
            const google::protobuf::MethodDescriptor& method, std::function<void(SseStream*)> done);

  grpc::ClientContext& context() { return context_; }
  /// Starts the call with `request` (serialized) on `stub`.
  void Start(grpc::GenericStub& stub, const std::string& request);
  /// Sends an SSE comment so that proxies and clients see the connection alive.
  void KeepAlive();

  void OnReadInitialMetadataDone(bool ok) override;
  void OnReadDone(bool ok) override;
  void OnDone(const grpc::Status& status) override;

 private:
  void ReadNextLocked();

  /// What the exchange's callbacks hold: the stream while it lives.
  struct Alive {
    std::mutex mu;
    SseStream* stream = nullptr;
  };

  const std::shared_ptr<HttpExchange> exchange_;
  const google::protobuf::MethodDescriptor& method_;
  const std::function<void(SseStream*)> done_;
  const std::shared_ptr<Alive> alive_;
  grpc::ClientContext context_;
  grpc::ByteBuffer request_;
  grpc::ByteBuffer response_;
  std::mutex mu_;
  bool started_ = false;  ///< the 200 and the event-stream head are given
  bool reading_ = false;  ///< a read is outstanding
  bool paused_ = false;   ///< a message waits for the client to take the bytes before it
  bool done_reading_ = false;
};

}  // namespace approvald::server
