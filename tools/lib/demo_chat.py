#!/usr/bin/env python3
"""model/demo: a `persistent` model handler speaking the generate protocol of
docs/invoke-protocol.md ("Model handlers"), which the HTTP gateway's OpenAI-compatible API and
WebSocket stream translate to and from.

It "generates" by echoing the prompt (the last user message of a chat) word by word: the first
token is the first word, each later one a space and the next word. It honours max_tokens
(finish_reason "length") and stop (a token that contains a stop string is cut before it,
finish_reason "stop"), serves requests concurrently, stops one when told to cancel it, and
pauses one while its client reads slowly. A payload that is not the generate protocol's JSON is
taken whole as the prompt (a plain gRPC caller).
Options: --delay-ms N between tokens (default 20); --repeat N says the prompt N times (a long
answer); --record FILE appends every frame header received, for tests.
"""
import json
import sys
import threading
import time

args = sys.argv[1:]
delay = float(args[args.index("--delay-ms") + 1]) / 1000 if "--delay-ms" in args else 0.02
repeat = int(args[args.index("--repeat") + 1]) if "--repeat" in args else 1
record = open(args[args.index("--record") + 1], "ab", buffering=0) if "--record" in args else None
out, out_lock, cancelled, gates = sys.stdout.buffer, threading.Lock(), set(), {}


def send(header, body=b""):
    with out_lock:
        out.write(header + b"\n" + body)
        out.flush()


def chunk(request_id, obj):
    body = json.dumps(obj).encode()
    send(b"CHUNK %s %d" % (request_id, len(body)), body)


def parse(payload):
    """The prompt, the token limit and the stop strings of a request."""
    try:
        request = json.loads(payload)
    except ValueError:
        request = None
    if not isinstance(request, dict) or request.get("type") not in ("chat", "completion"):
        return payload.decode("utf-8", "replace"), 0, []
    if request["type"] == "chat":
        users = [m.get("content", "") for m in request.get("messages", []) if m.get("role") == "user"]
        prompt = users[-1] if users else ""
    else:
        prompt = request.get("prompt", "")
    return prompt, int(request.get("max_tokens", 0)), list(request.get("stop", []))


def serve(request_id, payload):
    prompt, max_tokens, stops = parse(payload)
    words = prompt.split() * repeat
    sent, finish = 0, "stop"
    for i, word in enumerate(words):
        gates[request_id].wait()  # Cleared while the worker says PAUSE.
        if request_id in cancelled:
            return
        if max_tokens and sent == max_tokens:
            finish = "length"
            break
        token = word if i == 0 else " " + word
        cut = min([token.find(s) for s in stops if s and s in token], default=-1)
        if cut >= 0:
            if cut > 0:
                chunk(request_id, {"token": token[:cut]})
                sent += 1
            break
        chunk(request_id, {"token": token})
        sent += 1
        if delay:
            time.sleep(delay)
    chunk(request_id, {"finish_reason": finish,
                       "usage": {"prompt_tokens": len(prompt.split()), "completion_tokens": sent}})
    send(b"END " + request_id)


send(b"HELLO pause")
for line in iter(sys.stdin.buffer.readline, b""):
    kind, request_id, *rest = line.split()
    if record:
        record.write(line)
    if kind == b"REQ":
        payload = sys.stdin.buffer.read(int(rest[0]))
        gates[request_id] = threading.Event()
        gates[request_id].set()
        threading.Thread(target=serve, args=(request_id, payload), daemon=True).start()
    elif kind == b"CANCEL":
        cancelled.add(request_id)
        gates.get(request_id, threading.Event()).set()
    elif kind == b"PAUSE" and request_id in gates:
        gates[request_id].clear()
    elif kind == b"RESUME" and request_id in gates:
        gates[request_id].set()
