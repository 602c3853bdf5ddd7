#include "worker/session_log.h"

#include <unistd.h>

#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "tests/support/temp_dir.h"
#include "worker/log_pump.h"

namespace gantry::worker {
namespace {

std::string FileText(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Everything Read() returns from `offset` on, following its `next` offsets.
std::string ReadFrom(const SessionLog& log, int64_t offset, size_t step = 7) {
  std::string out;
  while (true) {
    SessionLog::Chunk c = log.Read(offset, step);
    if (c.data.empty()) return out;
    out += c.data;
    offset = c.next;
  }
}

std::string Lines(int from, int to) {
  std::string out;
  for (int i = from; i <= to; ++i) absl::StrAppend(&out, "line ", i, "\n");
  return out;
}

}  // namespace

TEST_CASE("session log: recent output from memory, older output from the file", "[worker]") {
  testing::TempDir scratch;
  const std::string& dir = scratch.path();
  auto log = SessionLog::Create(dir + "/s.log", 4096);
  REQUIRE(log.ok());
  std::string all = Lines(1, 2000);  // About 20 KiB: five times the ring.
  for (size_t i = 0; i < all.size(); i += 333) (*log)->Append(all.data() + i, std::min<size_t>(333, all.size() - i));
  CHECK((*log)->size() == static_cast<int64_t>(all.size()));
  CHECK(FileText(dir + "/s.log") == all);
  CHECK(ReadFrom(**log, 0) == all);      // Crosses from the file into the ring.
  CHECK(ReadFrom(**log, 5000, 1000) == all.substr(5000));
  // The last three lines come from the ring; a final newline does not start a fourth.
  CHECK(ReadFrom(**log, (*log)->TailOffset(3)) == Lines(1998, 2000));
  // More lines than the ring holds: found in the file.
  CHECK(ReadFrom(**log, (*log)->TailOffset(1500)) == Lines(501, 2000));
  CHECK((*log)->TailOffset(5000) == 0);
  // A line still being written counts as the last line.
  (*log)->Append("partial", 7);
  CHECK(ReadFrom(**log, (*log)->TailOffset(2)) == "line 2000\npartial");
  CHECK_FALSE((*log)->closed());
  (*log)->Close();
  CHECK((*log)->closed());

  // A log the worker no longer holds reads the same from its file.
  auto on_disk = SessionLog::OpenExisting(dir + "/s.log");
  REQUIRE(on_disk.ok());
  CHECK((*on_disk)->closed());
  CHECK(ReadFrom(**on_disk, (*on_disk)->TailOffset(1)) == "partial");
  CHECK(SessionLog::OpenExisting(dir + "/missing.log").status().code() == absl::StatusCode::kNotFound);
}

TEST_CASE("session log: a full disk truncates the file, the output goes on in memory", "[worker]") {
  // /dev/full fails every write with ENOSPC, like a log directory on a full filesystem.
  auto log = SessionLog::Create("/dev/full", 4096);
  REQUIRE(log.ok());
  std::string all = Lines(1, 1000);
  (*log)->Append(all.data(), all.size());
  CHECK((*log)->file_bytes() == 0);
  CHECK((*log)->size() == static_cast<int64_t>(all.size()));
  // The newest output is still readable, whole lines from the ring.
  std::string tail = ReadFrom(**log, (*log)->TailOffset(5));
  CHECK(tail == Lines(996, 1000));
  // From the start: a marker says how much is lost, then what memory still has.
  std::string from_start = ReadFrom(**log, 0, 100000);
  int64_t lost = (*log)->size() - 4096;
  CHECK(from_start.rfind(absl::StrCat("[gantry: ", lost, " bytes of output lost: the log file failed (No space left on device)]\n"), 0) == 0);
  CHECK(from_start.size() > 4096);
  CHECK(from_start.substr(from_start.size() - 4096) == all.substr(all.size() - 4096));
}

TEST_CASE("log pump: a session's pipe reaches its log, which is complete at EOF", "[worker]") {
  testing::TempDir scratch;
  const std::string& dir = scratch.path();
  LogPump pump(4096, /*max_file_bytes=*/0, /*keep_finished=*/1);
  auto fd = pump.Open("s1", dir + "/s1.log");
  REQUIRE(fd.ok());
  auto log = pump.Find("s1");
  REQUIRE(log != nullptr);
  std::string all = Lines(1, 3000);
  std::thread writer([&] {
    // A pipe holds 64 KiB: this blocks until the pump has read, as a session would.
    for (size_t i = 0; i < all.size();) {
      ssize_t n = write(*fd, all.data() + i, all.size() - i);
      REQUIRE(n > 0);
      i += static_cast<size_t>(n);
    }
    close(*fd);
  });
  writer.join();
  for (int i = 0; i < 500 && !log->closed(); ++i) usleep(10 * 1000);
  REQUIRE(log->closed());
  CHECK(FileText(dir + "/s1.log") == all);
  CHECK(ReadFrom(*log, log->TailOffset(2)) == Lines(2999, 3000));

  // Only `keep_finished` ended sessions stay in memory; the rest are read from their files.
  auto fd2 = pump.Open("s2", dir + "/s2.log");
  REQUIRE(fd2.ok());
  close(*fd2);
  for (int i = 0; i < 500 && pump.Find("s1") != nullptr; ++i) usleep(10 * 1000);
  CHECK(pump.Find("s1") == nullptr);
  CHECK(pump.Find("s2") != nullptr);
}


TEST_CASE("session log: a capped log keeps its newest half-caps on disk and says what it dropped", "[worker]") {
  testing::TempDir scratch;
  const std::string& dir = scratch.path();
  const std::string path = dir + "/s.log";
  // A 4 KiB ring, a 64 KiB cap: two files of at most 32 KiB.
  auto log = SessionLog::Create(path, 4096, 64 * 1024);
  REQUIRE(log.ok());
  const std::string all = Lines(1, 40000);  // About 10x the cap.
  for (size_t at = 0; at < all.size(); at += 1000) (*log)->Append(all.data() + at, std::min<size_t>(1000, all.size() - at));
  (*log)->Close();

  CHECK((*log)->size() == static_cast<int64_t>(all.size()));
  CHECK((*log)->disk_bytes() <= 64 * 1024);
  CHECK((*log)->disk_bytes() >= 32 * 1024);
  CHECK(FileText(path).size() + FileText(path + ".1").size() == static_cast<size_t>((*log)->disk_bytes()));
  // The newest output is all there, in order, across both files and the ring.
  const int64_t kept_from = (*log)->size() - (*log)->disk_bytes();
  CHECK(ReadFrom(**log, kept_from, 4093) == all.substr(static_cast<size_t>(kept_from)));
  // From the start: one marker for what was dropped, then what is kept.
  std::string from_start = ReadFrom(**log, 0, 4093);
  CHECK(from_start.rfind(absl::StrCat("[gantry: ", kept_from,
                                      " bytes of output dropped: this session's log is capped at 65536 bytes]\n"),
                         0) == 0);
  CHECK(absl::EndsWith(from_start, all.substr(static_cast<size_t>(kept_from))));
  // Tail works across the files.
  const int64_t tail = (*log)->TailOffset(3);
  CHECK(ReadFrom(**log, tail) == Lines(39998, 40000));

  // Read back by a later worker from the files alone: offsets start at what is kept.
  auto reopened = SessionLog::OpenExisting(path);
  REQUIRE(reopened.ok());
  CHECK((*reopened)->size() == (*log)->disk_bytes());
  CHECK(ReadFrom(**reopened, 0, 5000) == all.substr(static_cast<size_t>(kept_from)));
  CHECK(ReadFrom(**reopened, (*reopened)->TailOffset(2)) == Lines(39999, 40000));
}

}  // namespace gantry::worker
