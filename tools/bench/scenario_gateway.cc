// gateway and footprint-gateway: the inference front door (api-server/http) against
// InvokeService called directly, in one run, on one fleet: the same model handler (model/bench,
// tools/lib/demo_chat.py without delay), the same request, the same API key. What differs is
// only the door: HTTPS + SSE through the gateway's translation and its in-process call, or
// gRPC over mTLS. Then 1,000 SSE streams held open, for what each costs.
#include <catch2/catch.hpp>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <optional>

#include "absl/strings/str_cat.h"
#include "api-server/http/openai_request.h"
#include "gantry/v1/invoke_service.grpc.pb.h"
#include "tests/support/local_fleet.h"
#include "tools/bench/bench_options.h"
#include "tools/bench/bench_report.h"
#include "tools/bench/footprint_sample.h"

namespace gantry::bench {
namespace {
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using testing::LocalFleet;

constexpr int kTokens = 16;

struct Timing {
  double first_token_ms = 0;
  double total_ms = 0;
  int tokens = 0;
};

double MsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}

// One kept-alive HTTPS connection to the front door, verifying its certificate, as an SDK's.
class SseClient {
 public:
  SseClient(int port, const std::string& ca) : tls_(net::ssl::context::tls_client), stream_(io_, tls_) {
    tls_.load_verify_file(ca);
    stream_.set_verify_mode(net::ssl::verify_peer);
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(stream_.native_handle()), "127.0.0.1");
    beast::get_lowest_layer(stream_).connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
    beast::get_lowest_layer(stream_).socket().set_option(tcp::no_delay(true));  // As gRPC's own.
    stream_.handshake(net::ssl::stream_base::client);
  }

  // Sends a streamed chat completion; reads nothing yet.
  void Send(const std::string& body, const std::string& key) {
    bhttp::request<bhttp::string_body> request{bhttp::verb::post, "/v1/chat/completions", 11};
    request.set(bhttp::field::host, "127.0.0.1");
    request.set(bhttp::field::authorization, "Bearer " + key);
    request.set(bhttp::field::content_type, "application/json");
    request.keep_alive(true);
    request.body() = body;
    request.prepare_payload();
    bhttp::write(stream_, request);
  }

  // The whole answer to a request just sent: when its first token came and how many came.
  std::optional<Timing> Read(std::chrono::steady_clock::time_point start) {
    bhttp::response_parser<bhttp::buffer_body> parser;
    parser.body_limit(boost::none);
    bhttp::read_header(stream_, buffer_, parser);
    if (parser.get().result_int() != 200) return std::nullopt;
    Timing t;
    std::string body;
    char piece[16384];
    while (!parser.is_done()) {
      parser.get().body().data = piece;
      parser.get().body().size = sizeof(piece);
      beast::error_code ec;
      bhttp::read_some(stream_, buffer_, parser, ec);  // What has come: read() waits for 16 KiB or the end.
      if (ec && ec != bhttp::error::need_buffer) return std::nullopt;
      size_t got = sizeof(piece) - parser.get().body().size;
      // The first event (a token) is the body's first bytes: the gateway writes it with the head.
      if (got > 0 && body.empty()) t.first_token_ms = MsSince(start);
      body.append(piece, got);
    }
    t.total_ms = MsSince(start);
    // Counted once all is in: an event may span two reads.
    for (size_t at = body.find("\"content\":"); at != std::string::npos; at = body.find("\"content\":", at + 1)) {
      ++t.tokens;
    }
    return t;
  }

 private:
  net::io_context io_;
  net::ssl::context tls_;
  beast::ssl_stream<beast::tcp_stream> stream_;
  beast::flat_buffer buffer_;
};

// A fleet whose API server serves the front door and whose worker serves model/bench (and
// model/hold, which answers one token and then nothing, for the footprint).
struct GatewayFleet {
  LocalFleet fleet;
  int http_port = 0;
  std::string key;

  GatewayFleet() {
    fleet.api_env["GANTRY_HTTP_LISTEN"] = "127.0.0.1:0";
    fleet.api_env["GANTRY_HTTP_PORT_FILE"] = fleet.dir().Sub("api.http-port");
    fleet.api_env["GANTRY_MAX_INVOKES_PER_CLIENT"] = "2000";  // footprint-gateway holds 1,000.
    fleet.StartApi();
    http_port = testing::WaitForPortFile(fleet.dir().Sub("api.http-port"), absl::Seconds(5));
    REQUIRE(http_port > 0);
    fleet.StartController("node1");
    std::string handler = "/usr/bin/python3 " + fleet.ReadableCopy(testing::SourcePath("tools/lib/demo_chat.py"));
    fleet.StartWorkerServing("w1", "0",
                             absl::StrCat("model/bench 1.0.0 persistent ", handler, " --delay-ms 0\n",
                                          "model/hold 1.0.0 persistent ", handler, " --delay-ms 3600000\n"),
                             {"--invoke-concurrency", "1100"});
    key = testing::kAdminKey;
    REQUIRE(testing::WaitFor([&] { return Direct(Invoker(), Request("bench")).has_value(); }, absl::Seconds(20)));
  }

  std::unique_ptr<v1::InvokeService::Stub> Invoker() {
    return v1::InvokeService::NewStub(fleet.ChannelWithoutCert());
  }

  static std::string Body(const std::string& model) {
    std::string prompt;
    for (int i = 0; i < kTokens; ++i) absl::StrAppend(&prompt, i ? " " : "", "word", i);
    return absl::StrCat(R"({"model":")", model, R"(","stream":true,"messages":[{"role":"user","content":")", prompt,
                        R"("}]})");
  }

  // The same request as InvokeService gets it from the gateway.
  static v1::InvokeRequest Request(const std::string& model) {
    auto parsed = api::http::ParseOpenAiRequest(api::http::GenerateKind::kChat, Body(model));
    REQUIRE(parsed.ok());
    return api::http::ToInvokeRequest(*parsed);
  }

  std::optional<Timing> Direct(const std::unique_ptr<v1::InvokeService::Stub>& stub, const v1::InvokeRequest& request) {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + key);
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    auto start = std::chrono::steady_clock::now();
    auto reader = stub->Invoke(&ctx, request);
    v1::InvokeChunk chunk;
    Timing t;
    while (reader->Read(&chunk)) {
      if (chunk.data().find("\"token\"") == std::string::npos) continue;
      if (t.tokens++ == 0) t.first_token_ms = MsSince(start);
    }
    t.total_ms = MsSince(start);
    if (!reader->Finish().ok()) return std::nullopt;
    return t;
  }
};

}  // namespace

TEST_CASE("gateway", "[bench]") {
  GatewayFleet g;
  auto stub = g.Invoker();
  SseClient client(g.http_port, g.fleet.pki().ca());
  const v1::InvokeRequest request = GatewayFleet::Request("bench");
  const std::string body = GatewayFleet::Body("bench");
  const int n = Size(1000, 40);
  auto through_gateway = [&]() -> std::optional<Timing> {
    auto start = std::chrono::steady_clock::now();
    client.Send(body, g.key);
    return client.Read(start);
  };
  for (int i = 0; i < n / 10; ++i) {  // Warm-up.
    REQUIRE(through_gateway().has_value());
    REQUIRE(g.Direct(stub, request).has_value());
  }
  Figure p50{"gateway", "time to first token p50, concurrency 1", "ms"};
  Figure p99{"gateway", "time to first token p99, concurrency 1", "ms"};
  Figure added50{"gateway", "added to the first token p50 by the gateway", "ms"};
  Figure added99{"gateway", "added to the first token p99 by the gateway", "ms"};
  Figure rate{"gateway", "tokens per second, one stream", "1/s"};
  for (int round = 0; round < Options().rounds; ++round) {
    std::vector<double> gateway_ttft, direct_ttft;
    double gateway_ms = 0, direct_ms = 0;
    int gateway_tokens = 0, direct_tokens = 0;
    // Interleaved, so both see the same machine.
    for (int i = 0; i < n; ++i) {
      std::optional<Timing> a = through_gateway();
      std::optional<Timing> b = g.Direct(stub, request);
      REQUIRE(a.has_value());
      REQUIRE(b.has_value());
      CHECK(a->tokens == kTokens);
      CHECK(b->tokens == kTokens);
      gateway_ttft.push_back(a->first_token_ms);
      direct_ttft.push_back(b->first_token_ms);
      gateway_ms += a->total_ms;
      direct_ms += b->total_ms;
      gateway_tokens += a->tokens;
      direct_tokens += b->tokens;
    }
    Latencies gl = Summarise(&gateway_ttft), dl = Summarise(&direct_ttft);
    p50.rounds.push_back(gl.p50);
    p50.baseline_rounds.push_back(dl.p50);
    p99.rounds.push_back(gl.p99);
    p99.baseline_rounds.push_back(dl.p99);
    added50.rounds.push_back(gl.p50 - dl.p50);
    added99.rounds.push_back(gl.p99 - dl.p99);
    rate.rounds.push_back(gateway_tokens / (gateway_ms / 1000));
    rate.baseline_rounds.push_back(direct_tokens / (direct_ms / 1000));
  }
  added50.target = Target::AtMost(1);
  added99.target = Target::AtMost(2);
  for (Figure* f : {&p50, &p99, &added50, &added99, &rate}) Report::Global().Add(*f);
}

// footprint-gateway: 1,000 SSE streams held open through the front door (model/hold answers
// one token, then nothing): what each costs the API server, the controller and the worker.
TEST_CASE("footprint-gateway", "[bench]") {
  GatewayFleet g;
  const int k = Size(1000, 16);
  FootprintSample before = TakeFootprint(g.fleet);
  const LocalFleet::Threads idle_threads = g.fleet.ThreadCounts();
  const std::string body = GatewayFleet::Body("hold");
  std::vector<std::unique_ptr<SseClient>> clients;
  for (int i = 0; i < k; ++i) {
    clients.push_back(std::make_unique<SseClient>(g.http_port, g.fleet.pki().ca()));
    clients.back()->Send(body, g.key);
  }
  REQUIRE(testing::WaitFor([&] {
    return g.fleet.db().Scalar("SELECT COALESCE(sum((load->>'active_invokes')::int), 0) FROM controllers") ==
           std::to_string(k);
  }, absl::Seconds(60)));
  FootprintSample held = TakeFootprint(g.fleet);
  AddFootprintPerItem("per open SSE stream (front door)", before, held, k);
  AddThreadsOverIdle("footprint-gateway", absl::StrCat(k, " SSE streams open"), idle_threads, g.fleet.ThreadCounts());
  clients.clear();  // Their connections close: every stream is cancelled.
  CHECK(testing::WaitFor([&] {
    return g.fleet.db().Scalar("SELECT COALESCE(sum((load->>'active_invokes')::int), 0) FROM controllers") == "0";
  }, absl::Seconds(30)));
}

}  // namespace gantry::bench
