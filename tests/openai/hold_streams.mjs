// Holds N streamed chat completions open through the front door (Node's own https client, one
// connection each), prints "held N" once every one has its first token, and keeps them open
// until its stdin closes or it is killed.
// Usage: node hold_streams.mjs BASE_URL API_KEY N MODEL   (NODE_EXTRA_CA_CERTS: the cluster CA)
import https from "node:https";

const [baseURL, apiKey, n, model] = process.argv.slice(2);
const agent = new https.Agent({ keepAlive: false, maxSockets: Infinity });
const body = JSON.stringify({ model, stream: true, messages: [{ role: "user", content: "hold this open" }] });
let started = 0;
for (let i = 0; i < Number(n); i++) {
  const request = https.request(`${baseURL}/v1/chat/completions`, {
    method: "POST", agent,
    headers: { Authorization: `Bearer ${apiKey}`, "Content-Type": "application/json" },
  }, (response) => {
    if (response.statusCode !== 200) {
      console.error(`status ${response.statusCode}`);
      process.exit(1);
    }
    response.once("data", () => {
      if (++started === Number(n)) console.log(`held ${started}`);
    });
  });
  request.on("error", (err) => { console.error(err); process.exit(1); });
  request.end(body);
}
