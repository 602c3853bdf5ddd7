#!/usr/bin/env python3
"""demo/tokens: a `persistent` Gantry capability handler (see docs/invoke-protocol.md).

Streams the payload's words back one chunk per word, with a short delay between them, like a
model generating tokens. Serves requests concurrently and stops one when told to cancel it.
Options: --delay-ms N (default 50); --record FILE appends every frame received, for tests.
"""
import sys
import threading
import time

args = sys.argv[1:]
delay = float(args[args.index("--delay-ms") + 1]) / 1000 if "--delay-ms" in args else 0.05
record = open(args[args.index("--record") + 1], "ab", buffering=0) if "--record" in args else None
out, out_lock, cancelled = sys.stdout.buffer, threading.Lock(), set()


def send(header, body=b""):
    with out_lock:
        out.write(header + b"\n" + body)
        out.flush()


def serve(request_id, payload):
    for word in payload.split():
        if request_id in cancelled:
            return
        send(b"CHUNK %s %d" % (request_id, len(word) + 1), word + b" ")
        if delay:
            time.sleep(delay)
    send(b"END " + request_id)


for line in iter(sys.stdin.buffer.readline, b""):
    kind, request_id, *rest = line.split()
    if record:
        record.write(line)
    if kind == b"REQ":
        payload = sys.stdin.buffer.read(int(rest[0]))
        threading.Thread(target=serve, args=(request_id, payload), daemon=True).start()
    elif kind == b"CANCEL":
        cancelled.add(request_id)
