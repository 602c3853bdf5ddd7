#!/usr/bin/env bash
# Prints a TCP port on 127.0.0.1 that nothing listens on now. Chosen below the kernel's
# ephemeral range (net.ipv4.ip_local_port_range), which outgoing connections take their local
# ports from: a port chosen inside it can be taken by any connect() between our check and the
# server's bind, or while a test has its server down (a PostgreSQL stopped and started again).
set -euo pipefail
read -r ephemeral_low _ < /proc/sys/net/ipv4/ip_local_port_range
low=10000
high=$(( ephemeral_low - 1 ))
if [ "$high" -le "$low" ]; then echo "free-port.sh: the ephemeral range starts at $ephemeral_low, below $low" >&2; exit 1; fi
for _ in $(seq 1 50); do
  port=$(( low + (RANDOM * 32768 + RANDOM) % (high - low + 1) ))
  if ! (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null; then echo "$port"; exit 0; fi
done
echo "free-port.sh: no free port found between $low and $high" >&2; exit 1
