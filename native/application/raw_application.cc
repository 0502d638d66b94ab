#include "raw_application.h"

namespace quicket {

int RawApplication::ReceiveStreamData(Stream* stream, int64_t stream_id, const uint8_t* data, size_t length,
                                      bool fin, bool early) {
  if (stream) host_->Announce(stream, early);
  host_->QueueData(stream_id, data, length, fin);
  return 0;
}

int RawApplication::AckedStreamData(Stream* stream, int64_t, uint64_t offset, uint64_t length) {
  if (stream) stream->send.Acknowledge(offset, length);
  return 0;
}

int RawApplication::StreamClosed(int64_t, bool code_set, uint64_t* code) {
  if (!code_set) *code = 0;
  return 0;
}

void RawApplication::ExtendMaxStreamData(Stream* stream, int64_t) {
  if (!stream || !stream->blocked) return;
  stream->blocked = false;
  Resume(stream);
}

void RawApplication::Resume(Stream* stream) {
  if (host_->streams().MarkSendable(stream)) host_->MarkDirty();
}

int RawApplication::NextChunk(Chunk* chunk) {
  Stream* stream = host_->streams().NextSendable();
  if (!stream) return 0;
  chunk->stream = stream;
  chunk->stream_id = stream->id;
  chunk->count = stream->send.Unsent(chunk->vecs, 16);
  uint64_t offered = 0;
  for (size_t i = 0; i < chunk->count; i++) offered += chunk->vecs[i].len;
  // FIN may ride along only when every remaining byte is offered in this call.
  chunk->fin = stream->fin_requested && offered == stream->send.unsent_bytes();
  return 0;
}

int RawApplication::Commit(const Chunk& chunk, size_t accepted, bool more) {
  Stream* stream = chunk.stream;
  stream->send.MarkSent(accepted);
  if (chunk.fin && stream->send.unsent_bytes() == 0) stream->fin_sent = true;
  // Room left in the packet: let the next stream in line use it.
  if (more) host_->streams().RotateSendable();
  return 0;
}

void RawApplication::Blocked(const Chunk& chunk) {
  chunk.stream->blocked = true;
  host_->streams().DropSendable();
}

void RawApplication::WriteShut(const Chunk&) { host_->streams().DropSendable(); }

}  // namespace quicket
