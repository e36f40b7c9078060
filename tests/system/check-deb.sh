#!/usr/bin/env bash
# Builds the .deb with dpkg-buildpackage (shared with the end-to-end test, see
# build-deb.sh) and checks it as Debian would: the unit tests ran in the build,
# lintian reports no errors, the files, the conffile, the Depends, and the
# maintainer scripts that enable and start the service.
# Usage: check-deb.sh SOURCE_ROOT CACHE_DIR
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$1 cache=$2
fail=0
pass() { echo "PASS: $*"; }
failed() { echo "FAIL: $*"; fail=1; }
skip() { echo "SKIP: $*"; }

start=$(date +%s)
dir=$("$here/build-deb.sh" "$src" "$cache") || { echo "FAIL: the .deb does not build"; exit 1; }
deb=$(ls "$dir"/oomguard_*.deb 2>/dev/null | head -1)
[ -n "$deb" ] && pass "dpkg-buildpackage -us -uc -b built $(basename "$deb") ($(( $(date +%s) - start )) s, cached per source hash)" \
  || { echo "FAIL: no oomguard_*.deb in $dir"; exit 1; }

# The build ran the light test suites (dh_auto_test) and they passed.
log=$dir/build.log
if grep -q 'meson test --no-suite system --no-suite root' "$log"; then
  pass "dh_auto_test ran meson test without the system/root suites"
else
  failed "dh_auto_test did not run meson test --no-suite system --no-suite root"
fi
ok=$(sed -n 's/^Ok: *\([0-9]*\).*/\1/p' "$log" | tail -1)
bad=$(sed -n 's/^Fail: *\([0-9]*\).*/\1/p' "$log" | tail -1)
if [ "${ok:-0}" -gt 0 ] && [ "${bad:-1}" = 0 ]; then
  pass "tests in the package build: $ok ok, 0 failed"
else
  failed "tests in the package build: ok=${ok:-?} fail=${bad:-?}"
fi

# lintian: no errors; warnings and infos are listed for the record.
if command -v lintian >/dev/null; then
  lint=$(lintian --pedantic --display-info "$deb" 2>&1 | grep -v 'running with root privileges')
  errors=$(echo "$lint" | grep -c '^E:' || true)
  echo "$lint" | grep -E '^[EWIP]:' | sed 's/^/    lintian /'
  if [ "$errors" = 0 ]; then pass "lintian: no errors ($(echo "$lint" | grep -c '^W:' || true) warnings)"; else failed "lintian: $errors errors"; fi
else
  failed "lintian is not installed (tools/deps.sh --test installs it)"
fi

# Contents.
files=$(dpkg-deb -c "$deb" | awk '{print $6}' | sed 's|^\./|/|')
unitdir=$(pkg-config --variable=systemdsystemunitdir systemd 2>/dev/null || echo /lib/systemd/system)
for f in /usr/sbin/oomguard /etc/oomguard.toml "$unitdir/oomguard.service" \
         "$(dirname "$unitdir")/system-preset/90-oomguard.preset" \
         /usr/share/man/man8/oomguard.8.gz /usr/share/man/man5/oomguard.toml.5.gz \
         /usr/lib/systemd/catalog/oomguard.catalog /usr/share/bash-completion/completions/oomguard \
         /usr/share/doc/oomguard/README.md.gz /usr/share/doc/oomguard/examples/kubernetes/daemonset.yaml \
         /usr/share/doc/oomguard/examples/kubernetes/kustomization.yaml \
         /usr/share/zsh/vendor-completions/_oomguard; do
  if grep -qxF "$f" <<<"$files"; then pass "ships $f"; else failed "does not ship $f"; fi
done
# debian/rules builds with -Ddbus=enabled: the D-Bus side is always there.
for f in /usr/bin/oomguardctl /usr/share/dbus-1/system.d/org.oomguard1.conf \
         /usr/share/dbus-1/interfaces/org.oomguard1.xml /usr/share/man/man1/oomguardctl.1.gz \
         /usr/share/bash-completion/completions/oomguardctl /usr/share/zsh/vendor-completions/_oomguardctl; do
  if grep -qxF "$f" <<<"$files"; then pass "ships $f"; else failed "does not ship $f"; fi
done

ctl=$(mktemp -d); trap 'rm -rf "$ctl"' EXIT
dpkg-deb -e "$deb" "$ctl"
if grep -qxF /etc/oomguard.toml "$ctl/conffiles" 2>/dev/null; then pass "/etc/oomguard.toml is a conffile"; else failed "/etc/oomguard.toml is not a conffile"; fi
depends=$(dpkg-deb -f "$deb" Depends)
# The daemon runs without a bus (oomguardctl needs one): Recommends, not Depends.
recommends=$(dpkg-deb -f "$deb" Recommends)
if grep -q 'default-dbus-system-bus | dbus-system-bus' <<<"$recommends"; then pass "Recommends a system bus"; else failed "Recommends lacks default-dbus-system-bus | dbus-system-bus: $recommends"; fi
if ! grep -q 'dbus-system-bus' <<<"$depends"; then pass "does not Depend on a system bus"; else failed "Depends on a system bus: $depends"; fi
if grep -qw procps <<<"$depends"; then pass "Depends on procps (/bin/kill for ExecReload)"; else failed "Depends lacks procps"; fi
if grep -q "deb-systemd-helper enable 'oomguard.service'" "$ctl/postinst" && grep -q "deb-systemd-invoke \$_dh_action 'oomguard.service'" "$ctl/postinst"; then
  pass "postinst enables and starts oomguard.service (dh_installsystemd)"
else
  failed "postinst does not enable and start oomguard.service"
fi
if grep -q "deb-systemd-invoke stop 'oomguard.service'" "$ctl/prerm" 2>/dev/null; then pass "prerm stops the service"; else failed "prerm does not stop the service"; fi
if grep -q "deb-systemd-helper purge 'oomguard.service'" "$ctl/postrm" 2>/dev/null; then pass "postrm purges the unit state"; else failed "postrm does not purge"; fi

exit $fail
