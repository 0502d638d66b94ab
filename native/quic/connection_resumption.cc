// Connection, resumption: tickets for JS, and what happens when resumption goes wrong: streams of
// a rejected 0-RTT flight are replayed, and a handshake the server refused is retried without the
// ticket on the same Connection and streams.
#include <algorithm>

#include "../application/http3_application.h"
#include "../application/raw_application.h"
#include "../engine.h"
#include "connection.h"

namespace quicket {

void Connection::ReplayRejectedEarlyData() {
  early_rejected_ = true;
  // ngtcp2 forgets every stream it had; keep ours (their bytes were never acknowledged).
  StreamTable::Map early_streams = streams_.TakeAll();
  ngtcp2_conn_tls_early_data_rejected(conn_);
  // HTTP/3 state (control streams, QPACK) went with the streams: start afresh.
  bool http3 = app_->http3();
  app_ = std::make_unique<RawApplication>(AsHost());
  Reopen(std::move(early_streams), http3);
  Queue(events::EarlyDataRejected{});
}

// Streams whose bytes never reached the peer's application reopen here with the same IDs (opened
// in the same order) and send again from their first byte; HTTP/3 requests are resubmitted.
void Connection::Reopen(StreamTable::Map streams, bool http3) {
  if (http3 && !StartHttp3()) {
    HandleLibraryError(NGTCP2_ERR_INTERNAL);
    return;
  }
  for (auto& [id, stream] : streams) {
    if (http3 && (id & 0x2)) continue;  // the old control and QPACK streams
    int64_t reopened = -1;
    bool bidi = (id & 0x2) == 0;
    int rv = bidi ? ngtcp2_conn_open_bidi_stream(conn_, &reopened, nullptr)
                  : ngtcp2_conn_open_uni_stream(conn_, &reopened, nullptr);
    if (rv != 0 || reopened != id) {
      // The server now allows fewer streams than the ticket promised: this one cannot be replayed.
      Queue(events::StreamReset{id, NGTCP2_STREAM_LIMIT_ERROR, false});
      Queue(events::StreamClose{id, NGTCP2_STREAM_LIMIT_ERROR});
      continue;
    }
    stream->send.Rewind();
    stream->fin_sent = false;
    stream->blocked = false;
    stream->queued = false;
    Stream* reopened_stream = streams_.Add(std::move(stream));
    // Its writer may still wait. A flush while the stream was set aside dropped it from the list;
    // a replay in the same turn (rejected 0-RTT, the next address) did not.
    if (reopened_stream->drain_wanted &&
        std::find(waiting_writers_.begin(), waiting_writers_.end(), id) == waiting_writers_.end()) {
      waiting_writers_.push_back(id);
    }
    if (Http3Application* h3 = http3_application()) {
      h3->SubmitRequest(id, reopened_stream->request_headers);
    } else {
      app_->Resume(reopened_stream);
    }
  }
  MarkDirty();
}

void Connection::OnTicket(std::string session_data, uint32_t lifetime, bool early_data) {
  uint8_t params[256];
  ngtcp2_ssize length = ngtcp2_conn_encode_0rtt_transport_params(conn_, params, sizeof(params));
  events::Ticket event{std::move(session_data), "", lifetime, early_data, address_token_};
  if (length > 0) event.transport_params.assign(reinterpret_cast<char*>(params), length);
  Queue(std::move(event));
}

// A resumption attempt that fails during the handshake is retried once as a full handshake, on the
// same Connection and Streams: forged or damaged session data (its secret no longer matches the
// server's ticket, the remembered limits are not the server's) must cost a round trip, not the
// connection. Timeouts and certificate failures are not the ticket's fault and are reported.
bool Connection::RetryWithoutTicket(int error) {
  if (server_ || retried_ || state_ != State::kHandshaking || client_.session_data.empty() || !engine_) return false;
  if (error == NGTCP2_ERR_IDLE_CLOSE || error == NGTCP2_ERR_HANDSHAKE_TIMEOUT || error == NGTCP2_ERR_DROP_CONN) {
    return false;
  }
  std::string code, message;
  if (tls_->VerificationFailure(&code, &message)) return false;
  if (error == NGTCP2_ERR_DRAINING) {
    // The server refused the handshake: a TLS alert, or a protocol or transport-parameter error.
    const ngtcp2_ccerr* peer = ngtcp2_conn_get_ccerr(conn_);
    bool refused = peer->type == NGTCP2_CCERR_TYPE_TRANSPORT &&
                   ((peer->error_code & 0xff00) == NGTCP2_CRYPTO_ERROR || peer->error_code == NGTCP2_PROTOCOL_VIOLATION ||
                    peer->error_code == NGTCP2_TRANSPORT_PARAMETER_ERROR);
    if (!refused) return false;
  } else {
    ngtcp2_ccerr ccerr;
    ngtcp2_ccerr_default(&ccerr);
    ngtcp2_ccerr_set_liberr(&ccerr, error, nullptr, 0);
    SendConnectionClose(ccerr);
  }
  retried_ = true;
  AbandonAttempt();
  for (auto& [id, stream] : retried_streams_) stream->send.Retain(false);  // no second retry
  client_.session_data.clear();
  client_.transport_params.clear();
  if (!StartClient(client_).empty()) return false;
  Queue(events::TicketRejected{"refused"});
  return true;
}

// Abandon the attempt: its routes, its ngtcp2 and TLS state. Its streams wait for the next one
// (without remembered limits nothing can be sent before its handshake completes).
void Connection::AbandonAttempt() {
  for (const auto& cid : cids_) engine_->RemoveConnectionId(cid);
  cids_.clear();
  for (auto& [id, stream] : streams_.TakeAll()) {
    if (app_->IsOwnStream(id)) continue;  // HTTP/3's own streams start afresh with it
    stream->send.Restart();  // 0-RTT bytes were retained, acknowledged or not
    retried_streams_.emplace(id, std::move(stream));
  }
  retried_http3_ = retried_http3_ || app_->http3();
  app_ = std::make_unique<RawApplication>(AsHost());
  tls_.reset();
  tls_release_at_ = 0;
  ngtcp2_conn_del(conn_);
  conn_ = nullptr;
  if (qlog_) {
    fclose(qlog_);
    qlog_ = nullptr;
  }
  early_attempted_ = false;
  heard_from_peer_ = false;
}

void Connection::WantTickets(bool on) {
  want_tickets_ = on;
  if (!tls_) return;
  if (on) {
    tls_->set_ticket_handler([this](std::string data, uint32_t lifetime, bool early_data) {
      OnTicket(std::move(data), lifetime, early_data);
    });
  } else {
    tls_->set_ticket_handler(nullptr);
  }
}

}  // namespace quicket
