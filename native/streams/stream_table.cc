#include "stream_table.h"

namespace quicket {

Stream* StreamTable::Find(int64_t id) const {
  auto it = streams_.find(id);
  return it == streams_.end() ? nullptr : it->second.get();
}

Stream* StreamTable::Add(std::unique_ptr<Stream> stream) {
  int64_t id = stream->id;
  return streams_.insert_or_assign(id, std::move(stream)).first->second.get();
}

void StreamTable::Erase(int64_t id) { streams_.erase(id); }

StreamTable::Map StreamTable::TakeAll() {
  Map all;
  all.swap(streams_);
  sendable_.clear();
  return all;
}

bool StreamTable::MarkSendable(Stream* stream) {
  if (stream->queued || stream->blocked || !stream->has_unsent()) return false;
  stream->queued = true;
  sendable_.push_back(stream->id);
  return true;
}

Stream* StreamTable::NextSendable() {
  while (!sendable_.empty()) {
    Stream* stream = Find(sendable_.front());
    if (stream && !stream->blocked && stream->has_unsent()) return stream;
    if (stream) stream->queued = false;
    sendable_.pop_front();
  }
  return nullptr;
}

void StreamTable::RotateSendable() {
  Stream* stream = Find(sendable_.front());
  if (stream && !stream->blocked && stream->has_unsent()) {
    sendable_.splice(sendable_.end(), sendable_, sendable_.begin());  // to the back, same node
    return;
  }
  if (stream) stream->queued = false;
  sendable_.pop_front();
}

int64_t StreamTable::AddPending(bool bidi, bool request, std::vector<std::string> headers) {
  int64_t token = next_token_++;
  pending_.push_back({token, bidi, request, std::move(headers)});
  return token;
}

void StreamTable::CancelPending(int64_t token) {
  for (auto it = pending_.begin(); it != pending_.end(); ++it) {
    if (it->token == token) {
      pending_.erase(it);
      return;
    }
  }
}

void StreamTable::DropSendable() {
  if (Stream* stream = Find(sendable_.front())) stream->queued = false;
  sendable_.pop_front();
}

}  // namespace quicket
