// The `ws` npm package: one inference request, and the connection closed at its first token.
// Usage: node websocket_close.mjs WSS_URL API_KEY CA_FILE MODEL
import fs from "node:fs";
import WebSocket from "ws";

const [url, apiKey, caFile, model] = process.argv.slice(2);
const ws = new WebSocket(url, { headers: { Authorization: `Bearer ${apiKey}` }, ca: fs.readFileSync(caFile) });
ws.on("open", () => ws.send(JSON.stringify({ type: "inference", data: { model, prompt: "a b c d e f" } })));
ws.on("message", (data) => {
  if (JSON.parse(data.toString()).type === "token") {
    console.log("closing at the first token");
    ws.terminate();  // No close handshake: as a client that vanished.
  }
});
ws.on("error", (err) => { console.error(err); process.exit(1); });
