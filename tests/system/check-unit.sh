#!/usr/bin/env bash
# Checks units/oomguard.service as shipped:
#  - `systemd-analyze verify` is clean (no output at all), with ExecStart=
#    pointed at the freshly built daemon and the man pages from man/ on MANPATH,
#    because the host has neither installed;
#  - `systemd-analyze security --offline=yes` exposure is <= 2.0;
#  - the settings the issue demands are there, and /proc/sysrq-trigger is not
#    made read-only by any of them.
# Usage: check-unit.sh SOURCE_ROOT BUILT_DAEMON
set -uo pipefail
src=$1 daemon=$2
unit=$src/units/oomguard.service
max_exposure=2.0
fail=0
pass() { echo "PASS: $*"; }
failed() { echo "FAIL: $*"; fail=1; }

if ! command -v systemd-analyze >/dev/null; then
  echo "SKIP: systemd-analyze is not installed (package systemd)"
  exit 77
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/man/man1" "$tmp/man/man5" "$tmp/man/man8"
cp "$src"/man/*.1 "$tmp/man/man1/"
cp "$src"/man/*.5 "$tmp/man/man5/"
cp "$src"/man/*.8 "$tmp/man/man8/"
sed "s|/usr/sbin/oomguard|$daemon|g" "$unit" >"$tmp/oomguard.service"

# 1. verify: any output is a finding (systemd-analyze prints warnings and still exits 0).
if command -v man >/dev/null; then man_opt=--man=yes; else man_opt=--man=no; echo "NOTE: man not installed, man page check left out"; fi
out=$(MANPATH="$tmp/man" systemd-analyze verify "$man_opt" "$tmp/oomguard.service" 2>&1)
rc=$?
if [ $rc -eq 0 ] && [ -z "$out" ]; then
  pass "systemd-analyze verify is clean"
else
  failed "systemd-analyze verify (rc=$rc):"; echo "$out" | sed 's/^/    /'
fi

# 2. security exposure
sec=$(systemd-analyze security --offline=yes --no-pager "$unit" 2>&1)
score=$(echo "$sec" | sed -n 's/.*Overall exposure level for oomguard.service: \([0-9.]*\).*/\1/p')
if [ -z "$score" ]; then
  failed "no exposure level in systemd-analyze security output:"; echo "$sec" | tail -5
elif awk -v s="$score" -v m="$max_exposure" 'BEGIN { exit !(s <= m) }'; then
  pass "security exposure $score <= $max_exposure"
else
  failed "security exposure $score > $max_exposure; the exposed settings:"
  echo "$sec" | grep '✗'
fi

# 3. required settings (key=value as the issue names them)
want=(
  "Type=notify"
  "ExecStart=/usr/sbin/oomguard --config /etc/oomguard.toml"
  "ExecReload=/bin/kill -HUP \$MAINPID"
  "Restart=always"
  "OOMScoreAdjust=-1000"
  "LimitMEMLOCK=infinity"
  "SystemCallFilter=@system-service"
  "RestrictAddressFamilies=AF_UNIX"
  "PrivateNetwork=yes"
  "ProtectControlGroups=yes"
  # Debian's prometheus-node-exporter textfile directory, for [metrics] textfile.
  "ReadWritePaths=-/var/lib/prometheus/node-exporter"
)
for w in "${want[@]}"; do
  if grep -qxF -- "$w" "$unit"; then pass "has $w"; else failed "missing line: $w"; fi
done
for k in WatchdogSec Nice Documentation CapabilityBoundingSet; do
  if grep -q "^$k=." "$unit"; then pass "has $k="; else failed "missing $k="; fi
done
if grep -Eq '^ProtectKernelTunables=(yes|true|on|1)' "$unit"; then
  failed "ProtectKernelTunables=yes makes /proc/sysrq-trigger read-only"
else
  pass "ProtectKernelTunables is off (rebuilt by hand)"
fi
# Here-strings, not pipes into grep -q: under pipefail an early grep -q exit can SIGPIPE the writer.
protected_lines=$(grep -E '^(ReadOnlyPaths|InaccessiblePaths)=' "$unit" || true)
if grep -q '/proc/sysrq-trigger\|=/proc *$\|[ =]/proc\( \|$\)' <<<"$protected_lines"; then
  failed "/proc/sysrq-trigger (or /proc) is made read-only or inaccessible"
else
  pass "/proc/sysrq-trigger stays writable"
fi
# The hand-made replacement must cover what ProtectKernelTunables= would.
for p in /proc/sys /proc/kcore /proc/kallsyms /sys; do
  if grep -qE "[ =]-?$p( |\$)" <<<"$protected_lines"; then
    pass "$p protected by hand"
  else
    failed "$p is not in ReadOnlyPaths=/InaccessiblePaths="
  fi
done
# Every setting line carries a comment somewhere above it in its block.
uncommented=$(awk '
  /^#/ { c = 1; next }
  /^$/ { c = 0; next }
  /^\[/ { c = 0; next }
  { if (!c) print NR": "$0 }
' "$unit")
if [ -z "$uncommented" ]; then pass "every setting block is commented"; else failed "settings without a comment:"; echo "$uncommented"; fi

echo "exposure=$score"
exit $fail
