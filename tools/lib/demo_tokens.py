#!/usr/bin/env python3
"""demo/tokens: a `persistent` Gantry capability handler (see docs/invoke-protocol.md).

Streams the payload's words back one chunk per word, with a short delay between them, like a
model generating tokens. Serves requests concurrently, stops one when told to cancel it, and pauses one while its
client reads slowly.
Options: --delay-ms N (default 50); --record FILE appends every frame received, for tests.
"""
import sys
import threading
import time

args = sys.argv[1:]
delay = float(args[args.index("--delay-ms") + 1]) / 1000 if "--delay-ms" in args else 0.05
record = open(args[args.index("--record") + 1], "ab", buffering=0) if "--record" in args else None
out, out_lock, cancelled, gates = sys.stdout.buffer, threading.Lock(), set(), {}


def send(header, body=b""):
    with out_lock:
        out.write(header + b"\n" + body)
        out.flush()


def serve(request_id, payload):
    for word in payload.split():
        gates[request_id].wait()  # Cleared while the worker says PAUSE.
        if request_id in cancelled:
            return
        send(b"CHUNK %s %d" % (request_id, len(word) + 1), word + b" ")
        if delay:
            time.sleep(delay)
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
