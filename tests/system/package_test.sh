#!/usr/bin/env bash
# The Debian package, as an operator gets it: built by CPack in the image's build stage
# (scripts/container package, sharing container_test's layers), checked by lintian (no errors),
# then installed on a clean Debian 12 (the podman base image): blip --version and blip check of
# the shipped examples work, the install made the blip user and the dump job's token, and a
# purge removes what it added except the database.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
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
