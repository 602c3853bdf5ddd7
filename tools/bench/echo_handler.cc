#include "tools/bench/echo_handler.h"

#include <cstdio>
#include <cstring>
#include <string>

namespace gantry::bench {
namespace {

void Frame(const char* kind, const std::string& id, const std::string& body, bool with_length) {
  if (with_length) {
    std::fprintf(stdout, "%s %s %zu\n", kind, id.c_str(), body.size());
    std::fwrite(body.data(), 1, body.size(), stdout);
  } else {
    std::fprintf(stdout, "%s %s\n", kind, id.c_str());
  }
}

}  // namespace

int RunEchoHandler() {
  static char buffer[1 << 16];
  std::setvbuf(stdout, buffer, _IOFBF, sizeof(buffer));
  char header[300];
  while (std::fgets(header, sizeof(header), stdin) != nullptr) {
    char kind[16], id[256];
    size_t length = 0;
    int fields = std::sscanf(header, "%15s %255s %zu", kind, id, &length);
    if (fields < 2 || std::strcmp(kind, "REQ") != 0) continue;  // CANCEL: nothing in flight
    std::string payload(length, '\0');
    if (length > 0 && std::fread(payload.data(), 1, length, stdin) != length) return 1;
    int n = 0, size = 0;
    if (payload == "HOLD") continue;  // Never answered: an invoke kept in flight (footprint).
    if (std::sscanf(payload.c_str(), "STREAM %d %d", &n, &size) == 2) {
      std::string chunk(static_cast<size_t>(size), 'x');
      for (int i = 0; i < n; ++i) Frame("CHUNK", id, chunk, true);
    } else {
      Frame("CHUNK", id, payload, true);
    }
    Frame("END", id, "", false);
    std::fflush(stdout);
  }
  return 0;
}

}  // namespace gantry::bench
