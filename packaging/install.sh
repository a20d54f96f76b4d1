#!/usr/bin/env bash
# Installs turnpike as a systemd service from this source tree (the Debian package is the other
# way: packaging/README.md). Build first, as yourself, then install as root:
#   cargo build --release --bin turnpike
#   sudo packaging/install.sh [path/to/turnpike]      (default: target/release/turnpike)
# It never builds: cargo run as root would leave root-owned files in target/ and ~/.cargo.
# A file under /etc that differs from this tree's (an edited unit or config) is kept; the new
# one is written beside it as NAME.new.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "run as root (sudo $0)" >&2; exit 1; }

bin=${1:-target/release/turnpike}
if [ ! -x "$bin" ]; then
    echo "no turnpike binary at $bin: build it first, as yourself (not root):" >&2
    echo "    cargo build --release --bin turnpike" >&2
    echo "then run this again (give the binary's path if CARGO_TARGET_DIR moves it)." >&2
    exit 1
fi
if dpkg-query -W -f='${Status}' turnpike 2>/dev/null | grep -q 'ok installed'; then
    echo "the turnpike Debian package is installed: upgrade it with apt or dpkg instead" >&2
    exit 1
fi

# install_conf SRC DEST: installs SRC at DEST (mode 0644) if DEST is missing or the same;
# otherwise keeps DEST and writes DEST.new. Prints what it did; returns 1 if it kept DEST.
install_conf() {
    local src=$1 dest=$2
    install -d -m 0755 "$(dirname "$dest")"
    if [ ! -e "$dest" ]; then
        install -m 0644 "$src" "$dest"
        echo "installed $dest"
    elif cmp -s "$src" "$dest"; then
        echo "unchanged $dest"
    else
        install -m 0644 "$src" "$dest.new"
        echo "kept $dest (it differs from $src); the new one is $dest.new: compare and merge"
        return 1
    fi
}

install -m 0755 "$bin" /usr/bin/turnpike

id turnpike >/dev/null 2>&1 || useradd --system --home /var/lib/turnpike --shell /usr/sbin/nologin turnpike
install -d -m 0755 /etc/turnpike
install -d -m 0750 -o turnpike -g turnpike /var/lib/turnpike
# State written by an earlier run as another user (root) must become the service's.
chown -R turnpike:turnpike /var/lib/turnpike
# The admin token: random, readable by the service user and root only. The unit keeps /etc
# read-only to the service, so the gateway could not create it there itself.
if [ ! -e /etc/turnpike/admin.token ]; then
    (umask 077; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > /etc/turnpike/admin.token; echo >> /etc/turnpike/admin.token)
fi
chown turnpike:turnpike /etc/turnpike/admin.token
chmod 0600 /etc/turnpike/admin.token
install_conf packaging/turnpike.yaml /etc/turnpike/turnpike.yaml || true
/usr/bin/turnpike check --config /etc/turnpike/turnpike.yaml

if install_conf packaging/60-turnpike.conf /etc/sysctl.d/60-turnpike.conf; then
    sysctl --quiet --load /etc/sysctl.d/60-turnpike.conf || echo "note: some sysctls could not be applied here" >&2
fi
unit_kept=0
install_conf packaging/turnpike.service /etc/systemd/system/turnpike.service || unit_kept=1
install_conf packaging/logrotate /etc/logrotate.d/turnpike || true
if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
    systemctl daemon-reload
    if [ "$unit_kept" -eq 1 ]; then
        echo "the unit in use is your edited one; for local changes, prefer a drop-in (systemctl edit turnpike)"
    fi
    echo "installed: systemctl enable --now turnpike (or systemctl restart turnpike if it runs)"
else
    echo "installed (no systemd running here): /usr/bin/turnpike serve --config /etc/turnpike/turnpike.yaml"
fi
