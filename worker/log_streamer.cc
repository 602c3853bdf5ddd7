#include "worker/log_streamer.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/ascii.h"
#include "absl/time/clock.h"
#include "common/proto_time.h"

namespace gantry::worker {
namespace {

constexpr auto kFollowPoll = std::chrono::milliseconds(100);
constexpr absl::Duration kAfterExit = absl::Seconds(2);

v1::WorkerLogLines Batch(const v1::StreamLogsCommand& c) {
  v1::WorkerLogLines b;
  b.set_stream_id(c.stream_id());
  b.set_session_id(c.session_id());
  return b;
}

}  // namespace

bool IsSafeSessionId(const std::string& id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id) {
    if (!absl::ascii_isalnum(c) && c != '-' && c != '_') return false;
  }
  return true;
}

LogStreamer::LogStreamer(std::string session_dir, FindLog find, Sender send, IsRunning running, int max_streams)
    : session_dir_(std::move(session_dir)),
      find_(std::move(find)),
      send_(std::move(send)),
      running_(std::move(running)),
      max_streams_(max_streams) {}

LogStreamer::~LogStreamer() {
  CancelAll();
  std::vector<std::shared_ptr<Stream>> all;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [id, s] : streams_) all.push_back(s);
    all.insert(all.end(), finished_.begin(), finished_.end());
    streams_.clear();
    finished_.clear();
  }
  for (auto& s : all) {
    if (s->thread.joinable()) s->thread.join();
  }
}

void LogStreamer::ReapFinished() {
  for (auto it = streams_.begin(); it != streams_.end();) {
    if (it->second->done) {
      finished_.push_back(it->second);
      it = streams_.erase(it);
    } else {
      ++it;
    }
  }
  for (auto& s : finished_) {
    if (s->thread.joinable()) s->thread.join();  // Already returned: joins at once.
  }
  finished_.clear();
}

void LogStreamer::Start(const v1::StreamLogsCommand& command) {
  auto refuse = [&](int code, const std::string& message) {
    v1::WorkerLogLines end = Batch(command);
    end.set_end(true);
    end.set_error_code(code);
    end.set_error_message(message);
    send_(end);
  };
  if (!IsSafeSessionId(command.session_id())) {
    refuse(3 /* INVALID_ARGUMENT */, "session_id: not a session id");
    return;
  }
  std::lock_guard<std::mutex> lock(mu_);
  ReapFinished();
  if (static_cast<int>(streams_.size()) >= max_streams_ || streams_.count(command.stream_id()) != 0) {
    refuse(8 /* RESOURCE_EXHAUSTED */,
           absl::StrCat("this worker already serves ", streams_.size(), " log streams; retry later"));
    return;
  }
  auto stream = std::make_shared<Stream>();
  stream->credit = std::max(0, command.credit());
  streams_[command.stream_id()] = stream;
  stream->thread = std::thread([this, command, stream] { Run(command, stream); });
}

void LogStreamer::AddCredit(const std::string& stream_id, int credit) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = streams_.find(stream_id);
  if (it == streams_.end() || credit <= 0) return;
  it->second->credit += credit;
  cv_.notify_all();
}

void LogStreamer::Cancel(const std::string& stream_id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = streams_.find(stream_id);
  if (it != streams_.end()) it->second->cancelled = true;
  cv_.notify_all();
}

void LogStreamer::CancelAll() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [id, s] : streams_) s->cancelled = true;
  cv_.notify_all();
}

bool LogStreamer::SendBatch(const std::shared_ptr<Stream>& stream, const v1::WorkerLogLines& batch) {
  {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return stream->cancelled || stream->credit > 0; });
    if (stream->cancelled) return false;
    --stream->credit;
  }
  return send_(batch);
}

void LogStreamer::Run(const v1::StreamLogsCommand& c, std::shared_ptr<Stream> stream) {
  auto finish = [&] {
    std::lock_guard<std::mutex> lock(mu_);
    stream->done = true;
  };
  std::shared_ptr<SessionLog> log = find_(c.session_id());
  if (log == nullptr) {
    auto on_disk = SessionLog::OpenExisting(absl::StrCat(session_dir_, "/", c.session_id(), ".log"));
    if (on_disk.ok()) log = *std::move(on_disk);
  }
  if (log == nullptr) {
    v1::WorkerLogLines end = Batch(c);
    end.set_end(true);
    end.set_error_code(5 /* NOT_FOUND */);
    end.set_error_message(absl::StrCat("no log for session ", c.session_id(), " on this worker"));
    SendBatch(stream, end);
    finish();
    return;
  }
  int64_t offset = c.tail_lines() > 0 ? log->TailOffset(c.tail_lines()) : 0;
  std::string partial;  // Bytes after the last newline read so far.
  v1::WorkerLogLines batch = Batch(c);
  size_t batch_bytes = 0;
  bool ok = true;
  absl::Time gone_since = absl::InfiniteFuture();

  auto add_line = [&](std::string line) {
    auto* e = batch.add_entries();
    e->set_session_id(c.session_id());
    e->set_stream("output");
    ToProto(absl::Now(), e->mutable_timestamp());
    batch_bytes += line.size();
    e->set_message(std::move(line));
  };
  auto flush = [&]() {
    if (batch.entries_size() == 0) return true;
    bool sent = SendBatch(stream, batch);
    batch = Batch(c);
    batch_bytes = 0;
    return sent;
  };

  while (ok) {
    SessionLog::Chunk chunk = log->Read(offset, kMaxBatchBytes);
    if (!chunk.data.empty()) {
      offset = chunk.next;
      const std::string& buf = chunk.data;
      for (size_t i = 0; i < buf.size() && ok; ++i) {
        if (buf[i] == '\n') {
          add_line(std::move(partial));
          partial.clear();
        } else {
          partial.push_back(buf[i]);
          if (partial.size() >= kMaxLineBytes) {  // An endless line is cut, not buffered.
            add_line(std::move(partial));
            partial.clear();
          }
        }
        if (batch_bytes >= kMaxBatchBytes) ok = flush();
      }
      continue;
    }
    // At the end of what is written so far. Following ends when the output is complete (its
    // pipe closed), or when the process has been gone for a while (something it started outside
    // its process group may hold the pipe open).
    if (gone_since == absl::InfiniteFuture() && !running_(c.session_id())) gone_since = absl::Now();
    bool more_may_come = c.follow() && !log->closed() && absl::Now() - gone_since < kAfterExit;
    if (!more_may_come) {
      // One more look: the process may have written its last lines just before it ended.
      if (c.follow() && log->size() > offset) continue;
      if (!partial.empty()) add_line(std::move(partial));
      ok = flush();
      if (ok) {
        v1::WorkerLogLines end = Batch(c);
        end.set_end(true);
        SendBatch(stream, end);
      }
      break;
    }
    ok = flush();
    std::unique_lock<std::mutex> lock(mu_);
    if (cv_.wait_for(lock, kFollowPoll, [&] { return stream->cancelled; })) break;
  }
  finish();
}

}  // namespace gantry::worker
