// gantryctl invoke: one capability request, its chunks written to stdout as they arrive.
#include <unistd.h>

#include <cstdio>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gantry/v1/invoke_service.grpc.pb.h"
#include "tools/gantryctl/commands.h"
#include "tools/gantryctl/render.h"
#include "tools/gantryctl/spec.h"

namespace gantry::ctl {
namespace {

absl::StatusOr<std::string> ReadPayload(const Args& args) {
  if (args.positional().size() > 1) {
    if (args.Has("file")) return absl::InvalidArgumentError("give the payload as an argument or --file, not both");
    return args.positional()[1];
  }
  std::string path = args.Get("file");
  // No payload given and something piped in: read it (`echo hi | gantryctl invoke demo/echo`).
  if (path.empty() && isatty(STDIN_FILENO) == 0) path = "-";
  if (path.empty()) return std::string();
  return ReadInput(path);
}

int Invoke(Cli& cli) {
  const Args& args = cli.args();
  v1::InvokeRequest request;
  request.set_capability(args.positional()[0]);
  request.set_version(args.Get("version"));
  auto payload = ReadPayload(args);
  if (!payload.ok()) return Complain(std::string(payload.status().message()));
  request.set_payload(*payload);
  if (auto status = AddPairs(args, "meta", request.mutable_metadata()); !status.ok()) {
    return Complain(std::string(status.message()), kExitUsage);
  }
  auto context = cli.Stream();
  absl::Duration deadline = absl::InfiniteDuration();
  if (auto s = ParseDurationFlag(args, "deadline", &deadline); !s.ok()) return Complain(std::string(s.message()), kExitUsage);
  if (deadline != absl::InfiniteDuration()) context->set_deadline(absl::ToChronoTime(absl::Now() + deadline));
  // Ctrl-C cancels the request all the way to the handler on the worker.
  CancelOnInterrupt cancel(context.get());
  auto stub = v1::InvokeService::NewStub(cli.channel());
  auto stream = stub->Invoke(context.get(), request);
  v1::InvokeChunk chunk;
  const bool structured = cli.format() == Format::kJson || cli.format() == Format::kYaml;
  while (stream->Read(&chunk)) {
    if (structured) {
      PrintStructured(cli.format(), chunk);
    } else {
      std::fwrite(chunk.data().data(), 1, chunk.data().size(), stdout);
      std::fflush(stdout);
    }
  }
  grpc::Status status = stream->Finish();
  if (!status.ok() && Interrupted()) Complain("interrupted: the request was cancelled");
  return status.ok() ? kExitOk : cli.Fail(status);
}

}  // namespace

std::vector<Command> InvokeCommands() {
  return {{"invoke", "CAPABILITY [PAYLOAD]", "invoke a capability and stream its output to stdout",
           "The payload is the argument, else --file, else stdin when it is not a terminal. Chunks are written "
           "as they arrive, so the output pipes well; Ctrl-C cancels the request on the worker too.",
           {{"file", 'f', true, "FILE", "read the payload from FILE (\"-\": stdin)"},
            {"version", 0, true, "RANGE", "version constraint: 1.2.0, ^1.2, ~1.2, >=1.0"},
            {"meta", 0, true, "KEY=VALUE", "request metadata, e.g. session=ID for affinity (repeatable)"},
            {"deadline", 0, true, "DURATION", "give up after this long"}},
           1, 2, 0, Invoke}};
}

}  // namespace gantry::ctl
