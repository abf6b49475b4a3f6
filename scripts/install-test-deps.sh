#!/usr/bin/env bash
# Install everything the mailferry test suite needs on a Debian 12 machine.
# Idempotent and fast when everything is already present.
set -euo pipefail

PACKAGES=(
  dovecot-core dovecot-imapd dovecot-pop3d dovecot-lmtpd dovecot-managesieved dovecot-sieve
  radicale xandikos
  postgresql-15
  chromium chromium-driver
  openssl curl
  isync time # mbsync and /usr/bin/time, used by benchmarks
  procps
)

installed=()

is_installed() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

missing=()
for pkg in "${PACKAGES[@]}"; do
  is_installed "$pkg" || missing+=("$pkg")
done

if ((${#missing[@]} > 0)); then
  install_cmd="apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y ${missing[*]}"
  if [[ $(id -u) -ne 0 ]]; then
    echo "install-test-deps: ERROR: missing Debian packages: ${missing[*]}" >&2
    echo "install-test-deps: run as root (or with sudo): $install_cmd" >&2
    exit 1
  fi
  echo "install-test-deps: installing missing packages: ${missing[*]}"
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y -o DPkg::Lock::Timeout=600 "${missing[@]}"
  installed+=("${missing[@]}")

  # The dovecot packages may start a system-wide dovecot; the tests run their
  # own instances, so make sure the system one is not left running.
  if [[ -e /run/dovecot/master.pid ]]; then
    echo "install-test-deps: stopping system dovecot started by package installation"
    dovecot stop || true
  fi
fi

if ! id vmail >/dev/null 2>&1; then
  if [[ $(id -u) -ne 0 ]]; then
    echo "install-test-deps: ERROR: system user 'vmail' is missing; as root run:" >&2
    echo "  useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin vmail" >&2
    exit 1
  fi
  useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin vmail
  installed+=("user:vmail")
fi

for component in rustfmt clippy; do
  if ! cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1 && command -v rustup >/dev/null; then
    echo "install-test-deps: adding the rustup component $component"
    rustup component add "$component"
    installed+=("$component")
  fi
done

if ! cargo nextest --version >/dev/null 2>&1; then
  echo "install-test-deps: installing cargo-nextest"
  cargo install cargo-nextest --locked
  installed+=("cargo-nextest")
fi

if ((${#installed[@]} > 0)); then
  echo "install-test-deps: installed: ${installed[*]}"
else
  echo "install-test-deps: nothing missing (${#PACKAGES[@]} packages, vmail user, cargo-nextest all present)"
fi
