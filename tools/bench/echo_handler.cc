#include "tools/bench/echo_handler.h"

#include <poll.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <deque>
#include <string>

namespace gantry::bench {
namespace {

// A request being answered: its id, and the chunks still to send.
struct Answer {
  std::string id;
  std::string chunk;
  int left = 0;
};

void Frame(std::string& out, const char* kind, const std::string& id, const std::string* body) {
  out += kind;
  out += ' ';
  out += id;
  if (body != nullptr) {
    out += ' ';
    out += std::to_string(body->size());
    out += '\n';
    out += *body;
  } else {
    out += '\n';
  }
}

// Takes the whole frames at the front of `in` (the worker's bytes so far) as requests.
void TakeRequests(std::string& in, std::deque<Answer>& answers) {
  size_t at = 0;
  while (true) {
    const size_t eol = in.find('\n', at);
    if (eol == std::string::npos) break;
    char kind[16], id[256];
    size_t length = 0;
    const std::string header = in.substr(at, eol - at);
    const int fields = std::sscanf(header.c_str(), "%15s %255s %zu", kind, id, &length);
    const bool request = fields == 3 && std::strcmp(kind, "REQ") == 0;
    if (request && in.size() - (eol + 1) < length) break;  // Its payload is still coming.
    at = eol + 1;
    if (!request) continue;  // CANCEL: answered whole anyway.
    std::string payload = in.substr(at, length);
    at += length;
    if (payload == "HOLD") continue;  // Never answered: an invoke kept in flight (footprint).
    int n = 0, size = 0;
    if (std::sscanf(payload.c_str(), "STREAM %d %d", &n, &size) == 2) {
      answers.push_back({id, std::string(static_cast<size_t>(size), 'x'), n});
    } else {
      answers.push_back({id, std::move(payload), 1});
    }
  }
  in.erase(0, at);
}

bool WriteAll(const std::string& out) {
  size_t done = 0;
  while (done < out.size()) {
    ssize_t n = write(STDOUT_FILENO, out.data() + done, out.size() - done);
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

int RunEchoHandler() {
  // Requests are served together, not one after another: a chunk of each answer in turn, and
  // new requests taken whenever they come. The handler must not be the serial point of the
  // invoke scenarios, whose baseline serves each call on a thread of its own.
  std::deque<Answer> answers;
  std::string in, out;
  bool open = true;
  char buffer[1 << 16];
  while (open || !answers.empty()) {
    // Wait for requests only with nothing to answer; otherwise take what has come.
    pollfd ready{STDIN_FILENO, POLLIN, 0};
    while (open && poll(&ready, 1, answers.empty() ? -1 : 0) > 0) {
      const ssize_t n = read(STDIN_FILENO, buffer, sizeof(buffer));
      if (n <= 0) {
        open = false;
        break;
      }
      in.append(buffer, static_cast<size_t>(n));
      TakeRequests(in, answers);
      if (!answers.empty()) break;
      ready.revents = 0;
    }
    // One chunk of each answer in flight, up to 64 KiB, then one write.
    for (size_t i = answers.size(); i > 0 && out.size() < (1 << 16); --i) {
      Answer answer = std::move(answers.front());
      answers.pop_front();
      Frame(out, "CHUNK", answer.id, &answer.chunk);
      if (--answer.left > 0) {
        answers.push_back(std::move(answer));
      } else {
        Frame(out, "END", answer.id, nullptr);
      }
    }
    if (!out.empty() && !WriteAll(out)) return 1;
    out.clear();
  }
  return 0;
}

}  // namespace gantry::bench
