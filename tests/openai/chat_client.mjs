// The official `openai` npm package against Gantry's front door: one streamed chat completion
// (with a usage chunk) and one not streamed. Prints what it got as one JSON object.
// Usage: node chat_client.mjs BASE_URL API_KEY PROMPT   (NODE_EXTRA_CA_CERTS: the cluster CA)
import OpenAI from "openai";

const [baseURL, apiKey, prompt] = process.argv.slice(2);
const client = new OpenAI({ baseURL: `${baseURL}/v1`, apiKey, maxRetries: 0 });
const messages = [{ role: "system", content: "be brief" }, { role: "user", content: prompt }];

const { data: stream, response } = await client.chat.completions
  .create({ model: "demo", messages, stream: true, stream_options: { include_usage: true } })
  .withResponse();
const streamed = { tokens: [], finish_reason: null, usage: null, request_id: response.headers.get("x-request-id") };
for await (const chunk of stream) {
  if (chunk.usage) streamed.usage = chunk.usage;
  for (const choice of chunk.choices) {
    if (choice.delta?.content) streamed.tokens.push(choice.delta.content);
    if (choice.finish_reason) streamed.finish_reason = choice.finish_reason;
  }
}

const whole = await client.chat.completions.create({ model: "demo", messages, max_tokens: 2 });
const models = await client.models.list();
console.log(JSON.stringify({
  streamed,
  whole: { content: whole.choices[0].message.content, finish_reason: whole.choices[0].finish_reason,
           usage: whole.usage, object: whole.object },
  models: models.data.map((m) => m.id),
}));
