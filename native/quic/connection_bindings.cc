// The JS face of Connection (lib/connection.ts holds it as `#native`): each method converts its
// arguments, asks the transport session (connection.cc) and turns failures into coded errors;
// DeliverEvents hands the queued events to JS. No QUIC logic lives here.
#include <nghttp3/nghttp3.h>
#include <ngtcp2/ngtcp2.h>

#include "../addon.h"
#include "../engine.h"
#include "connection.h"

namespace quicket {

namespace {
Napi::Value BigIntOf(Napi::Env env, int64_t value) { return Napi::BigInt::New(env, value); }

int64_t StreamIdArg(const Napi::CallbackInfo& info, size_t index) {
  bool lossless = false;
  return info[index].As<Napi::BigInt>().Int64Value(&lossless);
}

uint64_t U64Arg(const Napi::CallbackInfo& info, size_t index) {
  return static_cast<uint64_t>(info[index].As<Napi::Number>().Int64Value());
}

std::vector<std::string> HeaderList(const Napi::Value& value) {
  std::vector<std::string> headers;
  Napi::Array list = value.As<Napi::Array>();
  for (uint32_t i = 0; i < list.Length(); i++) headers.push_back(list.Get(i).As<Napi::String>());
  return headers;
}
}  // namespace

Napi::Function Connection::Init(Napi::Env env) {
  return DefineClass(env, "Connection",
                     {InstanceMethod<&Connection::JsOpenStream>("openStream"),
                      InstanceMethod<&Connection::JsWrite>("write"),
                      InstanceMethod<&Connection::JsShutdownStream>("shutdownStream"),
                      InstanceMethod<&Connection::JsConsume>("consume"),
                      InstanceMethod<&Connection::JsClose>("close"),
                      InstanceMethod<&Connection::JsDestroy>("destroy"),
                      InstanceMethod<&Connection::JsSetWantTickets>("setWantTickets"),
                      InstanceMethod<&Connection::JsSetWantKeylog>("setWantKeylog"),
                      InstanceMethod<&Connection::JsSetKeepAlive>("setKeepAlive"),
                      InstanceMethod<&Connection::JsStats>("stats"),
                      InstanceMethod<&Connection::JsAddresses>("addresses"),
                      InstanceMethod<&Connection::JsPeerCertificate>("peerCertificate"),
                      InstanceMethod<&Connection::JsSubmitRequest>("submitRequest"),
                      InstanceMethod<&Connection::JsSubmitResponse>("submitResponse"),
                      InstanceMethod<&Connection::JsCancelPending>("cancelPending"),
                      InstanceMethod<&Connection::JsMigrate>("migrate")});
}

// Only Engine creates connections (through the stored constructor); JS never calls `new`.
Connection::Connection(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Connection>(info) {}

void Connection::DeliverEvents(Napi::Env env) {
  AddonData* addon = GetAddonData(env);
  // Keep this object alive even if JS drops every reference while we call it.
  Napi::Object self = Value();
  // Taken in batches, so an idle connection keeps no queue storage; events JS causes while a
  // batch is delivered form the next one.
  while (!events_.empty() && state_ != State::kTerminated) {
    std::vector<events::Event> batch;
    batch.swap(events_);
    for (events::Event& event : batch) {
      if (state_ == State::kTerminated) break;
      if (std::holds_alternative<events::NewConnection>(event)) {
        try {
          Napi::Value owner = addon->on_connection.MakeCallback(env.Global(), {engine_->owner(), self},
                                                                engine_->async_context());
          if (owner.IsObject()) SetOwner(owner.As<Napi::Object>());
        } catch (const Napi::Error& error) {
          engine_->ReportCallbackException(error);
        }
        continue;
      }
      if (owner_.IsEmpty()) continue;
      auto* data = std::get_if<events::StreamData>(&event);
      int64_t data_stream = data ? data->id : -1;
      size_t data_length = data ? data->bytes.size() : 0;  // the bytes may be handed to JS below
      try {
        Napi::Value result = addon->events.Deliver(env, owner_.Value(), event, engine_->async_context());
        // Stream data the JS side took without backpressure is credited back to the peer at once.
        if (data && result.IsBoolean() && result.As<Napi::Boolean>() && conn_ && state_ != State::kFinished) {
          ngtcp2_conn_extend_max_stream_offset(conn_, data_stream, data_length);
          ngtcp2_conn_extend_max_offset(conn_, data_length);
          MarkDirty();
        }
      } catch (const Napi::Error& error) {
        if (engine_) engine_->ReportCallbackException(error);
      }
    }
  }
}

void Connection::ThrowIfFinished(Napi::Env env) const {
  if (state_ == State::kFinished || state_ == State::kTerminated) {
    ThrowCoded(env, ErrorKind::kError, "ERR_QUIC_CONNECTION_CLOSED", "the connection is closed");
  }
}

bool Connection::JsCallable() const { return state_ != State::kFinished && state_ != State::kTerminated; }

// openStream(bidi) -> the stream ID, or while the peer's stream limit is reached a negative
// token: the stream opens later (events::StreamOpened with -token).
Napi::Value Connection::JsOpenStream(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ThrowIfFinished(env);
  // nghttp3 owns every stream of an HTTP/3 connection: a raw one would confuse the peer.
  if (app_->http3() || http3_wanted_) {
    ThrowCoded(env, ErrorKind::kError, "ERR_QUIC_HTTP3_CONNECTION", "this connection speaks HTTP/3: use request()");
  }
  Stream* stream = nullptr;
  int rv = OpenLocalStream(info[0].ToBoolean(), &stream);
  if (rv == NGTCP2_ERR_STREAM_ID_BLOCKED) return BigIntOf(env, -streams_.AddPending(info[0].ToBoolean(), false, {}));
  if (rv != 0) ThrowCoded(env, ErrorKind::kError, "ERR_QUIC_STREAM_OPEN", ngtcp2_strerror(rv));
  return BigIntOf(env, stream->id);
}

// write(id, bytes | undefined, fin) -> buffered bytes once above the drain threshold, else 0.
Napi::Value Connection::JsWrite(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  // Finished but JS not told yet (events queued before the close are still being delivered): the
  // queued 'close' ends the stream the way the connection ended; a write now is not a new failure.
  if (state_ == State::kFinished) return Napi::Number::New(env, 0);
  ThrowIfFinished(env);
  Stream* stream = streams_.Find(StreamIdArg(info, 0));
  if (!stream) ThrowCoded(env, ErrorKind::kError, "ERR_QUIC_STREAM_CLOSED", "the stream is closed");
  const uint8_t* data = nullptr;
  size_t length = 0;
  if (info[1].IsTypedArray()) {
    Napi::Uint8Array bytes = info[1].As<Napi::Uint8Array>();
    data = bytes.Data();
    length = bytes.ByteLength();
  }
  return Napi::Number::New(env, static_cast<double>(WriteStream(stream, data, length, info[2].ToBoolean())));
}

void Connection::JsShutdownStream(const Napi::CallbackInfo& info) {
  if (JsCallable()) ResetStream(StreamIdArg(info, 0), U64Arg(info, 1));
}

void Connection::JsConsume(const Napi::CallbackInfo& info) {
  if (JsCallable()) Consume(StreamIdArg(info, 0), U64Arg(info, 1));
}

// close(code, reason, timeoutMs)
void Connection::JsClose(const Napi::CallbackInfo& info) {
  if (!JsCallable()) return;
  CloseGracefully(U64Arg(info, 0), info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "", U64Arg(info, 2));
}

void Connection::JsDestroy(const Napi::CallbackInfo& info) {
  if (JsCallable()) CloseNow(U64Arg(info, 0));
}

void Connection::JsSetWantTickets(const Napi::CallbackInfo& info) { WantTickets(info[0].ToBoolean()); }

void Connection::JsSetWantKeylog(const Napi::CallbackInfo& info) { LogKeys(info[0].ToBoolean()); }

void Connection::JsSetKeepAlive(const Napi::CallbackInfo& info) {
  if (JsCallable()) KeepAlive(U64Arg(info, 0));
}

// submitRequest(headers: string[] as name/value pairs) -> the stream ID, or a negative token while
// HTTP/3 or the peer's stream limit is not there yet. The body is written with write() like any
// stream.
Napi::Value Connection::JsSubmitRequest(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ThrowIfFinished(env);
  int64_t id = -1;
  int error = 0;
  std::vector<std::string> headers = HeaderList(info[0]);
  switch (SubmitRequest(headers, &id, &error)) {
    case RequestStart::kStarted:
      return BigIntOf(env, id);
    case RequestStart::kLater:
      return BigIntOf(env, -streams_.AddPending(true, true, std::move(headers)));
    case RequestStart::kUnavailable:
      ThrowCoded(env, ErrorKind::kError, "ERR_QUIC_HTTP3_UNAVAILABLE", "HTTP/3 is not available on this connection");
    case RequestStart::kQuicError:
      ThrowCoded(env, ErrorKind::kError, "ERR_QUIC_STREAM_OPEN", ngtcp2_strerror(error));
    case RequestStart::kHttp3Error:
      ThrowCoded(env, ErrorKind::kError, "ERR_QUIC_HTTP3", nghttp3_strerror(error));
  }
  return env.Null();
}

// submitResponse(streamId, headers)
void Connection::JsSubmitResponse(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ThrowIfFinished(env);
  int rv = SubmitResponse(StreamIdArg(info, 0), HeaderList(info[1]));
  if (rv == NGHTTP3_ERR_STREAM_NOT_FOUND) ThrowCoded(env, ErrorKind::kError, "ERR_QUIC_STREAM_CLOSED", "the stream is closed");
  if (rv != 0) ThrowCoded(env, ErrorKind::kError, "ERR_QUIC_HTTP3", nghttp3_strerror(rv));
}

// cancelPending(-token): a stream JS destroyed before it could open.
void Connection::JsCancelPending(const Napi::CallbackInfo& info) { streams_.CancelPending(-StreamIdArg(info, 0)); }

}  // namespace quicket
