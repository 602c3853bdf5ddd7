#include "worker/log_streamer.h"

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/proto_time.h"

namespace gantry::worker {
namespace {

// Following ends when the output is complete (its pipe closed), or once the process has been
// gone this long (something it started outside its process group may hold the pipe open).
constexpr absl::Duration kAfterExit = absl::Seconds(2);
// Batches one stream sends on one turn before the others get theirs.
constexpr int kBatchesPerTurn = 4;

v1::WorkerLogLines Batch(const v1::StreamLogsCommand& c) {
  v1::WorkerLogLines b;
  b.set_stream_id(c.stream_id());
  b.set_session_id(c.session_id());
  return b;
}

v1::WorkerLogLines Refusal(const v1::StreamLogsCommand& c, int code, const std::string& message) {
  v1::WorkerLogLines end = Batch(c);
  end.set_end(true);
  end.set_error_code(code);
  end.set_error_message(message);
  return end;
}

}  // namespace

struct LogStreamer::Stream {
  v1::StreamLogsCommand command;
  std::shared_ptr<SessionLog> log;
  int64_t offset = 0;
  std::string partial;  // Bytes after the last newline read so far.
  int credit = 0;
  absl::Time gone_since = absl::InfiniteFuture();
  bool complete = false;  // All output read and sent: the end is next.
  bool over = false;      // The end sent, or a send failed (the connection is gone).
  uint64_t wake = 0;      // The log's wake, while waiting at the end of the output.
  EventLoop::TimerId recheck = 0;

  void StopWaiting(EventLoop* loop) {
    if (wake != 0) log->CancelWake(wake);
    wake = 0;
    loop->CancelTimer(recheck);
    recheck = 0;
  }
};

bool IsSafeSessionId(const std::string& id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id) {
    if (!absl::ascii_isalnum(c) && c != '-' && c != '_') return false;
  }
  return true;
}

LogStreamer::LogStreamer(std::string session_dir, FindLog find, Sender send, IsRunning running, Options options)
    : session_dir_(std::move(session_dir)),
      find_(std::move(find)),
      send_(std::move(send)),
      running_(std::move(running)),
      options_(options) {}

LogStreamer::~LogStreamer() {
  // No log may wake a stream once this is gone: each wake is cancelled on the loop first.
  loop_.Post([this] {
    for (auto& [id, stream] : streams_) stream->StopWaiting(&loop_);
    streams_.clear();
  });
  loop_.Stop();
}

void LogStreamer::Start(const v1::StreamLogsCommand& command) {
  loop_.Post([this, command] { Open(command); });
}

void LogStreamer::AddCredit(const std::string& stream_id, int credit) {
  if (credit <= 0) return;
  loop_.Post([this, stream_id, credit] {
    auto it = streams_.find(stream_id);
    if (it == streams_.end()) return;
    it->second->credit += credit;
    Step(stream_id);
  });
}

void LogStreamer::Cancel(const std::string& stream_id) {
  loop_.Post([this, stream_id] { Close(stream_id); });
}

void LogStreamer::CancelAll() {
  loop_.Post([this] {
    for (auto& [id, stream] : streams_) stream->StopWaiting(&loop_);
    streams_.clear();
  });
}

void LogStreamer::Open(const v1::StreamLogsCommand& command) {
  if (!IsSafeSessionId(command.session_id())) {
    send_(Refusal(command, 3 /* INVALID_ARGUMENT */, "session_id: not a session id"));
    return;
  }
  if (static_cast<int>(streams_.size()) >= options_.max_streams || streams_.count(command.stream_id()) != 0) {
    send_(Refusal(command, 8 /* RESOURCE_EXHAUSTED */,
                  absl::StrCat("this worker already serves ", streams_.size(), " log streams; retry later")));
    return;
  }
  std::shared_ptr<SessionLog> log = find_(command.session_id());
  if (log == nullptr) {
    auto on_disk = SessionLog::OpenExisting(absl::StrCat(session_dir_, "/", command.session_id(), ".log"));
    if (on_disk.ok()) log = *std::move(on_disk);
  }
  if (log == nullptr) {
    send_(Refusal(command, 5 /* NOT_FOUND */, absl::StrCat("no log for session ", command.session_id(), " on this worker")));
    return;
  }
  auto stream = std::make_unique<Stream>();
  stream->command = command;
  stream->offset = command.tail_lines() > 0 ? log->TailOffset(command.tail_lines()) : 0;
  stream->log = std::move(log);
  stream->credit = std::max(0, command.credit());
  streams_[command.stream_id()] = std::move(stream);
  Step(command.stream_id());
}

void LogStreamer::Step(const std::string& stream_id) {
  auto it = streams_.find(stream_id);
  if (it == streams_.end()) return;
  Stream& stream = *it->second;
  stream.StopWaiting(&loop_);
  int sent = 0;
  while (stream.credit > 0) {
    if (sent == kBatchesPerTurn) {
      loop_.Post([this, stream_id] { Step(stream_id); });  // The other streams' turn first.
      return;
    }
    const int credit = stream.credit;
    if (!SendNext(stream)) {
      WaitForOutput(stream_id, stream);
      return;
    }
    if (stream.over) {
      Close(stream_id);
      return;
    }
    if (stream.credit < credit) ++sent;
  }
}

bool LogStreamer::SendNext(Stream& stream) {
  const v1::StreamLogsCommand& c = stream.command;
  auto send = [&](const v1::WorkerLogLines& batch, bool last) {
    --stream.credit;
    if (!send_(batch) || last) stream.over = true;
  };
  if (stream.complete) {
    v1::WorkerLogLines end = Batch(c);
    end.set_end(true);
    send(end, /*last=*/true);
    return true;
  }
  v1::WorkerLogLines batch = Batch(c);
  auto add_line = [&](std::string line) {
    auto* e = batch.add_entries();
    e->set_session_id(c.session_id());
    e->set_stream("output");
    ToProto(absl::Now(), e->mutable_timestamp());
    e->set_message(std::move(line));
  };
  // No more than a batch's worth, with the partial line it may complete.
  SessionLog::Chunk chunk = stream.log->Read(stream.offset, kMaxBatchBytes - stream.partial.size());
  if (!chunk.data.empty()) {
    stream.offset = chunk.next;
    for (char ch : chunk.data) {
      if (ch == '\n') {
        add_line(std::move(stream.partial));
        stream.partial.clear();
      } else {
        stream.partial.push_back(ch);
        if (stream.partial.size() >= kMaxLineBytes) {  // An endless line is cut, not buffered.
          add_line(std::move(stream.partial));
          stream.partial.clear();
        }
      }
    }
    if (batch.entries_size() > 0) send(batch, /*last=*/false);
    return true;  // Lines sent, or a partial line grown: read on.
  }
  // At the end of what is written so far.
  if (stream.gone_since == absl::InfiniteFuture() && !running_(c.session_id())) stream.gone_since = absl::Now();
  const bool more_may_come =
      c.follow() && !stream.log->closed() && absl::Now() - stream.gone_since < kAfterExit;
  if (more_may_come) return false;
  // One more look: the process may have written its last lines just before it ended.
  if (c.follow() && stream.log->size() > stream.offset) return true;
  stream.complete = true;
  if (!stream.partial.empty()) {
    add_line(std::move(stream.partial));
    stream.partial.clear();
    send(batch, /*last=*/false);
  }
  return true;
}

void LogStreamer::WaitForOutput(const std::string& stream_id, Stream& stream) {
  stream.wake = stream.log->WakeBeyond(stream.offset, [this, stream_id] {
    loop_.Post([this, stream_id] { Step(stream_id); });
  });
  if (stream.wake == 0) {  // More came (or the log closed) since the read.
    loop_.Post([this, stream_id] { Step(stream_id); });
    return;
  }
  const absl::Duration until_gone =
      stream.gone_since == absl::InfiniteFuture() ? options_.recheck : kAfterExit - (absl::Now() - stream.gone_since);
  stream.recheck = loop_.After(std::max(until_gone, absl::Milliseconds(1)), [this, stream_id] {
    auto it = streams_.find(stream_id);
    if (it != streams_.end()) it->second->recheck = 0;
    Step(stream_id);
  });
}

void LogStreamer::Close(const std::string& stream_id) {
  auto it = streams_.find(stream_id);
  if (it == streams_.end()) return;
  it->second->StopWaiting(&loop_);
  streams_.erase(it);
}

}  // namespace gantry::worker
