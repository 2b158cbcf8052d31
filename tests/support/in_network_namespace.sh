#!/bin/sh
# Runs a command (a test binary) in a network namespace of its own whose lo
# carries, besides 127.0.0.0/8, an IPv6 /64 with 101 addresses (fd00::1 to
# fd00::65) and one address of another /64 (fd00:0:0:1::2). Needs root.
# Usage: unshare -n tests/support/in_network_namespace.sh COMMAND [ARGS...]
set -e
ip link set lo up
ip -6 addr add fd00::1/64 dev lo nodad
ip -6 addr add fd00:0:0:1::2/64 dev lo nodad
for i in $(seq 2 101); do
  ip -6 addr add "fd00::$(printf %x "$i")/64" dev lo nodad
done
exec "$@"
