#!/usr/bin/env bash
# The Debian package, as an operator gets it: built by CPack in the image's build stage
# (scripts/container package, sharing container_test's layers), checked by lintian (no errors),
# then installed on a clean Debian 12 (the podman base image): blip --version and blip check of
# the shipped examples work, the install made the blip user and the dump job's token, and a
# purge removes what it added except the database. Then the unit under a real systemd (PID 1 of a
# podman container): started (READY), reloaded, stopped with every sample stored, and restarted by
# its watchdog when blip's loop is stopped.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
box=blip-systemd-$$
trap 'scripts/container podman rm -f "$box" >/dev/null 2>&1; rm -rf "$work"' EXIT
cd "$root"

scripts/container package "$work/out" >"$work/build.log" 2>&1 || { tail -40 "$work/build.log"; exit 1; }
deb=$(ls "$work"/out/blip_*_amd64.deb)
echo "package: $(basename "$deb") ($(stat -c %s "$deb") bytes)"
dpkg-deb -f "$deb" Depends

# lintian: warnings are shown, an error fails the test.
lintian --allow-root --tag-display-limit 0 "$deb" >"$work/lintian.txt" 2>&1 || true
cat "$work/lintian.txt"
if grep -q '^E: ' "$work/lintian.txt"; then
  echo "FAIL: lintian reports errors" >&2
  exit 1
fi
# conffiles: the examples in /etc survive an operator's edits across upgrades.
dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles >"$work/conffiles"
for example in deploy/bare-metal/probes.d/*.toml; do
  grep -qx "/etc/blip/probes.d/$(basename "$example")" "$work/conffiles" ||
    { echo "FAIL: $example is not a conffile" >&2; exit 1; }
done

# On a clean Debian 12: install (apt resolves the computed dependencies), use, purge.
scripts/container podman run --rm --network host -v "$work/out:/pkg:ro" localhost/debian:bookworm sh -euc '
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq /pkg/blip_*_amd64.deb >/tmp/install.log 2>&1 || { tail -20 /tmp/install.log; exit 1; }
  blip --version
  blip check -c /etc/blip/probes.d
  getent passwd blip >/dev/null || { echo "FAIL: no blip user"; exit 1; }
  test "$(stat -c %a /etc/blip/credentials)" = 700 || { echo "FAIL: credentials not 0700"; exit 1; }
  test "$(wc -c </etc/blip/credentials/dump-token)" -eq 32 || { echo "FAIL: no 32-digit token"; exit 1; }
  test -f /usr/lib/systemd/system/blip.service
  man -w blip >/dev/null 2>&1 || test -f /usr/share/man/man1/blip.1.gz
  # The database stays on purge; everything the package added goes.
  mkdir -p /var/lib/blip && echo data >/var/lib/blip/blip.db
  apt-get purge -y -qq blip >/tmp/purge.log 2>&1 || { tail -20 /tmp/purge.log; exit 1; }
  test ! -e /usr/bin/blip && test ! -e /etc/blip || { echo "FAIL: purge left /etc/blip or /usr/bin/blip"; ls -laR /etc/blip; exit 1; }
  ! getent passwd blip >/dev/null || { echo "FAIL: purge left the blip user"; exit 1; }
  test -s /var/lib/blip/blip.db || { echo "FAIL: purge removed the database"; exit 1; }
  echo "installed, checked and purged on a clean Debian 12"
'

# Under systemd as PID 1: Debian 12 with systemd added (made once, then reused), privileged so
# that systemd can build the unit's sandbox (namespaces, read-only mounts) as on a machine.
systemd_image=localhost/debian-systemd:bookworm
if ! scripts/container podman image exists "$systemd_image"; then
  scripts/container podman rm -f "$box-prep" >/dev/null 2>&1 || true
  scripts/container podman run --name "$box-prep" --network host localhost/debian:bookworm sh -euc '
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends systemd systemd-sysv >/dev/null'
  scripts/container podman commit "$box-prep" "$systemd_image" >/dev/null 2>&1
  scripts/container podman rm "$box-prep" >/dev/null
fi
scripts/container podman run -d --name "$box" --systemd=always --privileged --network host \
  -v "$work/out:/pkg:ro" "$systemd_image" /sbin/init >/dev/null
in_box() { scripts/container podman exec "$box" sh -euc "$1"; }
# The host's network: the private face on a free port (read by blip run from /etc/default/blip).
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# systemd mounts each unit's credentials under /run, which podman's /run tmpfs keeps from
# reaching the unit unless it is a shared mount (systemd's container interface, systemd#38103):
# LoadCredential= would hand blip an empty directory.
in_box "
  export DEBIAN_FRONTEND=noninteractive
  systemctl is-system-running --wait >/dev/null || true
  mount --make-shared /run
  apt-get update -qq >/dev/null
  apt-get install -y -qq /pkg/blip_*_amd64.deb >/tmp/install.log 2>&1 || { tail -20 /tmp/install.log; exit 1; }
  echo BLIP_LISTEN=127.0.0.1:$port >/etc/default/blip"
show() { in_box "systemctl show -p $1 --value blip"; }
# Type=notify: start returns once blip said READY=1 (its first probes are scheduled).
start_blip() {
  in_box 'systemctl start blip || { journalctl -u blip --no-pager | tail -30; exit 1; }'
  [ "$(in_box 'systemctl is-active blip')" = active ] || { in_box 'journalctl -u blip --no-pager | tail -30'; exit 1; }
}
start_blip
sleep 3
in_box 'systemctl stop blip'
[ "$(show Result)" = success ] && [ "$(show ExecMainStatus)" = 0 ] ||
  { echo "FAIL: stop: $(show Result) status $(show ExecMainStatus)" >&2; in_box 'journalctl -u blip --no-pager | tail -30'; exit 1; }
# Every attempt sent is stored: blip's own count at the stop against the probes' rows (a job's
# rows are its state each second, not attempts; read as blip, so SQLite's side files stay the
# service's).
sent=$(in_box 'journalctl -u blip --no-pager' | sed -n 's/.*run: stopped samples=\([0-9]*\).*/\1/p' | tail -n1)
stored=$(in_box 'runuser -u blip -- blip export --db /var/lib/blip/blip.db --since 1h | grep -vc "\"type\":\"job\""')
echo "systemd: started and stopped; $sent samples sent, $stored stored"
[ -n "$sent" ] && [ "$sent" -gt 0 ] && [ "$sent" = "$stored" ] || { echo "FAIL: samples lost at stop" >&2; exit 1; }

# A reload (SIGHUP through ExecReload) is not a restart.
start_blip
first_pid=$(show MainPID)
in_box 'systemctl reload blip'
# ExecReload returns once SIGHUP is sent; blip reloads on its own thread just after.
in_box 'for _ in $(seq 50); do journalctl -u blip --no-pager | grep -q "reload: probes=" && exit 0; sleep 0.2; done; exit 1' ||
  { echo "FAIL: no reload in the journal" >&2; in_box 'journalctl -u blip --no-pager | tail -30'; exit 1; }
[ "$(show MainPID)" = "$first_pid" ] && [ "$(in_box 'systemctl is-active blip')" = active ] ||
  { echo "FAIL: a reload is not a restart" >&2; exit 1; }
echo "systemd: reloaded"

# The watchdog: blip's loop stopped (SIGSTOP) sends no WATCHDOG=1; after WatchdogSec (10 s)
# systemd aborts it and Restart=on-failure starts a new one.
stopped_pid=$first_pid
in_box "kill -STOP $stopped_pid"
for _ in $(seq 60); do
  pid=$(show MainPID)
  [ "$pid" != "$stopped_pid" ] && [ "$pid" != 0 ] && [ "$(in_box 'systemctl is-active blip || true')" = active ] && break
  sleep 1
done
[ "$(show NRestarts)" -ge 1 ] && [ "$(show MainPID)" != "$stopped_pid" ] ||
  { echo "FAIL: the watchdog did not restart a stopped blip" >&2; in_box 'journalctl -u blip --no-pager | tail -30'; exit 1; }
in_box 'journalctl -u blip --no-pager | grep -q "Watchdog timeout"' ||
  { echo "FAIL: no watchdog timeout in the journal" >&2; exit 1; }
echo "systemd: the watchdog restarted a stopped blip (restarts: $(show NRestarts))"
in_box 'systemctl stop blip'
