#!/usr/bin/env bash
# Builds rpm/oomguard.spec with Debian's rpmbuild and checks the package.
# Debian's rpm lacks Fedora's %meson*/%systemd_*/%_unitdir macros, so this local
# check loads rpm/macros.local-check (stand-ins used only here), and passes
# --nodeps because Debian's rpm database knows none of the BuildRequires.
# The test suite already runs in the meson build and in the .deb build, so this
# builds --without check (a third full build of every test would cost minutes);
# OOMGUARD_RPM_CHECK=1 runs %check as well.
# Usage: check-rpm.sh SOURCE_ROOT
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$1
fail=0
pass() { echo "PASS: $*"; }
failed() { echo "FAIL: $*"; fail=1; }
skip() { echo "SKIP: $*"; }

if ! command -v rpmbuild >/dev/null; then
  echo "FAIL: rpmbuild is not installed (tools/deps.sh --test installs Debian's rpm)"
  exit 1
fi
spec=$src/rpm/oomguard.spec
version=$(sed -n 's/^Version: *//p' "$spec")
top=$(mktemp -d /var/tmp/oomguard-rpm.XXXXXX)
trap 'rm -rf "$top"' EXIT
mkdir -p "$top/SOURCES" "$top/stage"
"$here/pkg-source.sh" copy "$src" "$top/stage/oomguard-$version"
tar -czf "$top/SOURCES/oomguard-$version.tar.gz" -C "$top/stage" "oomguard-$version"

check_opt=(--without check)
[ "${OOMGUARD_RPM_CHECK:-0}" = 1 ] && check_opt=(--with check)
start=$(date +%s)
if rpmbuild -bb --nodeps "${check_opt[@]}" --define "_topdir $top" --load "$src/rpm/macros.local-check" "$spec" >"$top/build.log" 2>&1; then
  pass "rpmbuild -bb built the package ($(( $(date +%s) - start )) s)"
else
  failed "rpmbuild failed; last lines:"; tail -n 40 "$top/build.log"
  exit 1
fi
rpmfile=$(ls "$top"/RPMS/*/oomguard-"$version"-*.rpm | head -1)
echo "    $(basename "$rpmfile")"

if [ "${OOMGUARD_RPM_CHECK:-0}" = 1 ]; then
  if grep -q 'meson test .*--no-suite system --no-suite root' "$top/build.log" && grep -q '^Fail: *0' "$top/build.log"; then
    pass "%check ran meson test (light suites) and it passed"
  else
    failed "%check did not run or failed"
  fi
elif grep -q 'meson test' "$top/build.log"; then
  failed "--without check still ran the tests"
else
  skip "%check (built --without check; OOMGUARD_RPM_CHECK=1 runs it)"
fi

# rpm -qlp: exactly the expected files (build-id links aside).
list=$(rpm -qlp "$rpmfile" | grep -v '^/usr/lib/.build-id')
echo "$list" | sed 's/^/    rpm -qlp: /'
# No preset (Fedora's policy decides what is enabled); LICENSE, README and the
# Kubernetes manifests as %license/%doc.
expected=(
  /etc/oomguard.toml
  /usr/lib/systemd/catalog/oomguard.catalog
  /usr/lib/systemd/system/oomguard.service
  /usr/sbin/oomguard
  /usr/share/bash-completion/completions/oomguard
  /usr/share/bash-completion/completions/oomguardctl
  /usr/share/doc/oomguard
  /usr/share/doc/oomguard/README.md
  /usr/share/doc/oomguard/kubernetes
  $(cd "$src/packaging/kubernetes" && find . -mindepth 1 | sed 's|^\.|/usr/share/doc/oomguard/kubernetes|')
  /usr/share/licenses/oomguard
  /usr/share/licenses/oomguard/LICENSE
  /usr/share/man/man5/oomguard.toml.5
  /usr/share/man/man8/oomguard.8
  /usr/share/zsh/site-functions/_oomguard
)
dbus=(
  /usr/bin/oomguardctl
  /usr/share/dbus-1/interfaces/org.oomguard1.xml
  /usr/share/dbus-1/system.d/org.oomguard1.conf
  /usr/share/man/man1/oomguardctl.1
  /usr/share/zsh/site-functions/_oomguardctl
)
# The spec builds with -Ddbus=enabled and lists the D-Bus side statically.
expected+=("${dbus[@]}")
# Man pages may or may not be compressed by the build root policy.
got=$(echo "$list" | sed -E 's/\.(gz|bz2|xz|zst)$//' | LC_ALL=C sort)
want=$(printf '%s\n' "${expected[@]}" | LC_ALL=C sort)
if [ "$got" = "$want" ]; then
  pass "rpm -qlp lists exactly the ${#expected[@]} expected files"
else
  failed "rpm -qlp differs from the expected list:"; diff <(echo "$want") <(echo "$got") | sed 's/^/    /'
fi

flags=$(rpm -qp --qf '[%{FILEFLAGS:fflags} %{FILENAMES}\n]' "$rpmfile")
if grep -qx 'cn /etc/oomguard.toml' <<<"$flags"; then pass "/etc/oomguard.toml is %config(noreplace)"; else failed "/etc/oomguard.toml is not %config(noreplace)"; fi

scripts=$(rpm -qp --scripts "$rpmfile")
for want in "systemctl --no-reload preset oomguard.service" \
            "systemctl --no-reload disable --now oomguard.service" \
            "systemctl try-restart oomguard.service" \
            "systemctl reload dbus.service"; do
  if grep -qF "$want" <<<"$scripts"; then pass "scriptlets: $want"; else failed "scriptlets lack: $want"; fi
done
requires=$(rpm -qp --requires "$rpmfile")
for r in /usr/bin/kill 'libsystemd.so.0()(64bit)'; do
  if grep -qxF "$r" <<<"$requires"; then pass "Requires $r"; else failed "does not require $r"; fi
done
# The daemon runs without a bus; oomguardctl needs one.
if grep -qxF dbus <<<"$(rpm -qp --recommends "$rpmfile")"; then pass "Recommends dbus"; else failed "does not recommend dbus"; fi
if ! grep -qxF dbus <<<"$requires"; then pass "does not require dbus"; else failed "requires dbus"; fi
# rpmlint (Debian ships it): no errors on the spec and the package; the rest is listed.
if command -v rpmlint >/dev/null; then
  for what in "$spec" "$rpmfile"; do
    lint=$(rpmlint -c "$here/rpmlint-fedora.toml" "$what" 2>&1)
    echo "$lint" | grep -E ': [EW]: ' | sed 's/^/    rpmlint /'
    summary=$(echo "$lint" | grep -E '[0-9]+ errors' | tail -1)
    if grep -qE '(^| )0 errors' <<<"$summary"; then pass "rpmlint $(basename "$what"): $summary"; else failed "rpmlint $(basename "$what"): $summary"; fi
  done
else
  skip "rpmlint is not installed"
fi
if rpm -qlp "$rpmfile" >/dev/null && [ "$(rpm -qp --qf '%{NAME}-%{VERSION}' "$rpmfile")" = "oomguard-$version" ]; then
  pass "package is oomguard-$version"
fi
exit $fail
