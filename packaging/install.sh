#!/usr/bin/env bash
# Installs turnpike as a systemd service from this source tree:
#   sudo packaging/install.sh        (builds the release binary first if needed)
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "run as root (sudo $0)" >&2; exit 1; }

bin=target/release/turnpike
if [ ! -x "$bin" ]; then
    cargo build --release --bin turnpike
fi
install -m 0755 "$bin" /usr/bin/turnpike

id turnpike >/dev/null 2>&1 || useradd --system --home /var/lib/turnpike --shell /usr/sbin/nologin turnpike
install -d -m 0755 /etc/turnpike
install -d -m 0750 -o turnpike -g turnpike /var/lib/turnpike
# State written by an earlier run as another user (root) must become the service's.
chown -R turnpike:turnpike /var/lib/turnpike
# The admin token: random, readable by the service user and root only.
if [ ! -e /etc/turnpike/admin.token ]; then
    (umask 077; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > /etc/turnpike/admin.token; echo >> /etc/turnpike/admin.token)
fi
chown turnpike:turnpike /etc/turnpike/admin.token
chmod 0600 /etc/turnpike/admin.token
if [ ! -e /etc/turnpike/turnpike.yaml ]; then
    install -m 0644 packaging/turnpike.yaml /etc/turnpike/turnpike.yaml
fi
/usr/bin/turnpike check --config /etc/turnpike/turnpike.yaml

install -m 0644 packaging/60-turnpike.conf /etc/sysctl.d/60-turnpike.conf
sysctl --quiet --load /etc/sysctl.d/60-turnpike.conf || echo "note: some sysctls could not be applied here" >&2
install -m 0644 packaging/turnpike.service /etc/systemd/system/turnpike.service
install -d -m 0755 /etc/logrotate.d
install -m 0644 packaging/logrotate /etc/logrotate.d/turnpike
if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
    systemctl daemon-reload
    echo "installed: systemctl enable --now turnpike"
else
    echo "installed (no systemd running here): /usr/bin/turnpike serve --config /etc/turnpike/turnpike.yaml"
fi
