// Connection, closing: the graceful close (streams finish, everything acknowledged, bounded by a
// deadline), closing at once, and what each ngtcp2 error means for JS (the 'close' event's info).
#include <nghttp3/nghttp3.h>

#include <cstring>

#include "../engine.h"
#include "connection.h"

namespace quicket {

namespace {
constexpr size_t kMaxPacketSize = 1500;
}  // namespace

// A graceful close may send CONNECTION_CLOSE once every stream has finished on its own and the
// peer has acknowledged every packet that carried something: stream data and FINs, and HTTP/3's
// HEADERS and GOAWAY (which live in nghttp3, not in our buffers). Or once its deadline passed.
bool Connection::GracefulCloseDone(uint64_t now) const {
  if (now >= close_deadline_) return true;
  for (const auto& [id, stream] : streams_) {
    if (app_->IsOwnStream(id)) continue;  // HTTP/3's control and QPACK streams live as long as it
    return false;
  }
  ngtcp2_conn_info info;
  ngtcp2_conn_get_conn_info(conn_, &info);
  return info.bytes_in_flight == 0;
}

void Connection::SendConnectionClose(const ngtcp2_ccerr& error) {
  if (!conn_ || ngtcp2_conn_in_closing_period(conn_) || ngtcp2_conn_in_draining_period(conn_)) return;
  uint8_t packet[kMaxPacketSize];
  ngtcp2_path_storage ps;
  ngtcp2_path_storage_zero(&ps);
  ngtcp2_pkt_info info{};
  ngtcp2_ssize n = ngtcp2_conn_write_connection_close(conn_, &ps.path, &info, packet, sizeof(packet), &error, Now());
  if (n > 0 && engine_) engine_->SendOnPath(packet, n, n, ps.path);
}

void Connection::HandleLibraryError(int error) {
  if (RetryWithoutTicket(error)) return;
  events::Close info;
  info.application = false;
  switch (error) {
    case NGTCP2_ERR_DRAINING: {
      if (stateless_reset_) {
        info.remote = true;
        info.error_code = "ERR_QUIC_STATELESS_RESET";
        info.error_message = "the peer reset the connection: it no longer has its state (a restart?)";
        break;
      }
      // The peer closed the connection.
      const ngtcp2_ccerr* peer = ngtcp2_conn_get_ccerr(conn_);
      info.remote = true;
      info.quic_code = peer->error_code;
      info.application = peer->type == NGTCP2_CCERR_TYPE_APPLICATION;
      info.reason.assign(reinterpret_cast<const char*>(peer->reason), peer->reasonlen);
      if (!info.application && peer->error_code != NGTCP2_NO_ERROR) {
        bool tls_alert = (peer->error_code & 0xff00) == NGTCP2_CRYPTO_ERROR;
        // 120 is TLS's no_application_protocol: the peer shares none of our ALPN protocols.
        info.error_code = peer->error_code == NGTCP2_CONNECTION_REFUSED  ? "ERR_QUIC_CONNECTION_REFUSED"
                          : !tls_alert                                     ? "ERR_QUIC_TRANSPORT_ERROR"
                          : peer->error_code == (NGTCP2_CRYPTO_ERROR | 120) ? "ERR_QUIC_ALPN_MISMATCH"
                                                                          : "ERR_QUIC_TLS_ALERT";
        info.error_message = "peer closed the connection with QUIC error " + std::to_string(peer->error_code) +
                             (info.reason.empty() ? "" : ": " + info.reason);
      }
      break;
    }
    case NGTCP2_ERR_IDLE_CLOSE:
      // Silent (nothing is sent), but say why, so it is not mistaken for a clean close.
      info.reason = "idle timeout";
      if (state_ == State::kHandshaking) {
        info.error_code = "ERR_QUIC_HANDSHAKE_TIMEOUT";
        info.error_message = "the handshake did not complete before the idle timeout";
      }
      break;
    case NGTCP2_ERR_HANDSHAKE_TIMEOUT:
      info.error_code = "ERR_QUIC_HANDSHAKE_TIMEOUT";
      info.error_message = "the handshake did not complete in time";
      break;
    case NGTCP2_ERR_DROP_CONN:
      info.error_code = "ERR_QUIC_CONNECTION_DROPPED";
      info.error_message = "connection dropped";
      break;
    case NGTCP2_ERR_CRYPTO: {
      ngtcp2_ccerr ccerr;
      ngtcp2_ccerr_default(&ccerr);
      uint8_t alert = ngtcp2_conn_get_tls_alert(conn_);
      ngtcp2_ccerr_set_tls_alert(&ccerr, alert, nullptr, 0);
      SendConnectionClose(ccerr);
      info.quic_code = ccerr.error_code;
      if (server_ || !tls_->VerificationFailure(&info.error_code, &info.error_message)) {
        info.error_code = alert == 120 ? "ERR_QUIC_ALPN_MISMATCH" : "ERR_QUIC_TLS_HANDSHAKE";
        info.error_message = "TLS handshake failed (alert " + std::to_string(alert) + ")";
      }
      break;
    }
    default: {
      ngtcp2_ccerr ccerr;
      ngtcp2_ccerr_default(&ccerr);
      if (app_failed_) {
        ccerr = close_error_;
        info.application = true;
        info.error_code = "ERR_QUIC_HTTP3";
        info.error_message = "HTTP/3 protocol error " + std::to_string(ccerr.error_code);
      } else {
        ngtcp2_ccerr_set_liberr(&ccerr, error, nullptr, 0);
        info.error_code = "ERR_QUIC_PROTOCOL";
        info.error_message = std::string("QUIC protocol error: ") + ngtcp2_strerror(error);
      }
      SendConnectionClose(ccerr);
      info.quic_code = ccerr.error_code;
      break;
    }
  }
  Finish(std::move(info));
}

void Connection::Finish(events::Close info) {
  if (state_ == State::kFinished || state_ == State::kTerminated) return;
  state_ = State::kFinished;
  if (timer_) uv_timer_stop(timer_);
  memcpy(&info.peer, &remote_, sizeof(remote_));
  Queue(std::move(info));
  if (engine_) engine_->MarkFinished(this);
}

void Connection::OnPortUnreachable() {
  if (server_ || state_ != State::kHandshaking) return;
  if (TryNextAddress()) return;
  events::Close info;
  info.application = false;
  info.error_code = "ECONNREFUSED";
  info.system_error = UV_ECONNREFUSED;
  Finish(std::move(info));
}

void Connection::CloseForEngineShutdown() {
  if (state_ == State::kFinished || state_ == State::kTerminated) return;
  ngtcp2_ccerr ccerr;
  ngtcp2_ccerr_default(&ccerr);
  SendConnectionClose(ccerr);
  Finish(events::Close{});
}

void Connection::CloseGracefully(uint64_t code, std::string reason, uint64_t timeout_ms) {
  if (close_requested_) return;
  close_reason_ = std::move(reason);
  close_deadline_ = Now() + timeout_ms * NGTCP2_MILLISECONDS;
  ngtcp2_ccerr_default(&close_error_);
  ngtcp2_ccerr_set_application_error(&close_error_, code, reinterpret_cast<const uint8_t*>(close_reason_.data()),
                                     close_reason_.size());
  close_requested_ = true;
  if (app_->http3() && state_ == State::kEstablished) {
    app_->Shutdown();  // GOAWAY first
    ngtcp2_ccerr_set_application_error(&close_error_, code == 0 ? NGHTTP3_H3_NO_ERROR : code,
                                       reinterpret_cast<const uint8_t*>(close_reason_.data()), close_reason_.size());
  }
  if (state_ == State::kHandshaking) {
    // Nothing can be delivered gracefully before the handshake: close now.
    SendConnectionClose(close_error_);
    events::Close closed;
    closed.quic_code = code;
    closed.reason = close_reason_;
    Finish(std::move(closed));
    return;
  }
  MarkDirty();
}

void Connection::CloseNow(uint64_t code) {
  ngtcp2_ccerr ccerr;
  ngtcp2_ccerr_default(&ccerr);
  if (code != 0) ngtcp2_ccerr_set_application_error(&ccerr, code, nullptr, 0);
  SendConnectionClose(ccerr);
  events::Close closed;
  closed.quic_code = code;
  Finish(std::move(closed));
}

}  // namespace quicket
