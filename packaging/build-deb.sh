#!/usr/bin/env bash
# Builds mailferry_<version>_<arch>.deb with dpkg-deb alone (no cargo-deb needed; `cargo deb
# -p mailferry-cli` builds the same from Cargo.toml's [package.metadata.deb]).
#   packaging/build-deb.sh                          # release build, package in target/debian/
#   packaging/build-deb.sh --binary PATH --out DIR  # package a binary built elsewhere
# Contents: /usr/bin/mailferry, the systemd unit, /etc/mailferry/mailferry.toml (a conffile),
# man pages and bash/zsh/fish completions generated from the binary, maintainer scripts
# that create the mailferry user and /var/lib/mailferry.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

binary=""
out="target/debian"
while (($#)); do
  case "$1" in
    --binary) binary=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    *) echo "build-deb.sh: unknown argument '$1' (use --binary PATH, --out DIR)" >&2; exit 2 ;;
  esac
done
if [[ -z "$binary" ]]; then
  cargo build --release --locked -p mailferry-cli
  binary=target/release/mailferry
fi
[[ -x "$binary" ]] || { echo "build-deb.sh: '$binary' is not an executable" >&2; exit 2; }

version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
arch=$(dpkg --print-architecture)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
chmod 0755 "$stage"

install -D -m 0755 "$binary" "$stage/usr/bin/mailferry"
# Debug symbols stay out of the package (a release build keeps its symbol names).
if command -v strip >/dev/null; then strip --strip-debug "$stage/usr/bin/mailferry"; fi
install -D -m 0644 packaging/mailferry.service "$stage/lib/systemd/system/mailferry.service"
install -D -m 0640 packaging/mailferry.toml "$stage/etc/mailferry/mailferry.toml"
"$binary" man --dir "$stage/usr/share/man/man1"
gzip -9n "$stage"/usr/share/man/man1/*.1
install -d "$stage/usr/share/bash-completion/completions" \
  "$stage/usr/share/zsh/vendor-completions" "$stage/usr/share/fish/vendor_completions.d"
"$binary" completions bash >"$stage/usr/share/bash-completion/completions/mailferry"
"$binary" completions zsh >"$stage/usr/share/zsh/vendor-completions/_mailferry"
"$binary" completions fish >"$stage/usr/share/fish/vendor_completions.d/mailferry.fish"
install -D -m 0644 README.md "$stage/usr/share/doc/mailferry/README.md"

install -d "$stage/DEBIAN"
install -m 0755 packaging/debian/postinst packaging/debian/prerm packaging/debian/postrm "$stage/DEBIAN/"
echo "/etc/mailferry/mailferry.toml" >"$stage/DEBIAN/conffiles"
size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
cat >"$stage/DEBIAN/control" <<CONTROL
Package: mailferry
Version: $version
Architecture: $arch
Maintainer: mailferry maintainers <mailferry@localhost>
Section: mail
Priority: optional
Installed-Size: $size
Depends: libc6 (>= 2.31), adduser
Recommends: ca-certificates
Description: moves e-mail accounts between servers
 Folders, messages, flags and dates, calendars, contacts and filters, from one
 server to another: one account from the command line (mailferry migrate), or
 thousands through a self-hosted service with a web UI and a REST API
 (mailferry serve), resumable and without duplicates.
CONTROL

mkdir -p "$out"
deb="$out/mailferry_${version}_${arch}.deb"
dpkg-deb --build --root-owner-group "$stage" "$deb" >/dev/null
echo "$deb"
