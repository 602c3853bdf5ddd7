// The `ws` npm package driving the front door's WebSocket protocol: two inference requests sent
// at once on one connection, answered in order. Prints every message received, as a JSON array.
// With "protocol", the key goes as a browser must send it (no headers on a WebSocket): as the
// subprotocol "bearer.KEY" beside "gantry.v1", which the server must choose.
// Usage: node websocket_client.mjs WSS_URL API_KEY CA_FILE [header|protocol]
import fs from "node:fs";
import WebSocket from "ws";

const [url, apiKey, caFile, keyIn = "header"] = process.argv.slice(2);
const ca = fs.readFileSync(caFile);
const ws = keyIn === "protocol"
  ? new WebSocket(url, ["gantry.v1", `bearer.${apiKey}`], { ca })
  : new WebSocket(url, { headers: { Authorization: `Bearer ${apiKey}` }, ca });
const received = [];
let done = 0;
ws.on("open", () => {
  if (keyIn === "protocol" && ws.protocol !== "gantry.v1") {
    console.error(`the server chose the subprotocol "${ws.protocol}"`);
    process.exit(1);
  }
  ws.send(JSON.stringify({ type: "inference", data: { model: "demo", prompt: "first request here", maxTokens: 10 } }));
  ws.send(JSON.stringify({ type: "inference",
                           data: { model: "demo", messages: [{ role: "user", content: "second one" }] } }));
});
ws.on("message", (data) => {
  const message = JSON.parse(data.toString());
  received.push(message);
  if (message.type === "done" || message.type === "error") done += 1;
  if (done === 2) ws.close(1000);
});
ws.on("unexpected-response", (req, res) => {
  console.log(JSON.stringify([{ type: "http", status: res.statusCode }]));
  process.exit(0);
});
ws.on("error", (err) => { console.error(err); process.exit(1); });
ws.on("close", () => console.log(JSON.stringify(received)));
