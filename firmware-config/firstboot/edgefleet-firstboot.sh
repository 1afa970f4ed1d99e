#!/usr/bin/env bash
# edgefleet first boot: move the agent's config (and secrets) off the FAT boot partition,
# create the service user and data directory, check the config, enable the agent.
#
# The operator writes two files to the SD card's boot partition before the first boot:
#   edgefleet-agent.yaml  the agent configuration (see firmware-config/agent.example.yaml)
#   edgefleet-agent.env   optional secrets, e.g. EDGEFLEET_AGENT_MQTT_PASSWORD=...
# The secrets file is deleted from the boot partition (which anyone can read) once copied.
#
# EDGEFLEET_ROOT (default /) lets tests run this against a scratch directory; there,
# user creation and systemctl are skipped.
set -euo pipefail

ROOT="${EDGEFLEET_ROOT:-/}"
ROOT="${ROOT%/}"
BOOT="${EDGEFLEET_BOOT:-$ROOT/boot/firmware}"
ETC="$ROOT/etc/edgefleet"
DATA="$ROOT/var/lib/edgefleet"
EDGEFLEET="${EDGEFLEET_BIN:-/opt/edgefleet/venv/bin/edgefleet}"

log() { echo "edgefleet-firstboot: $*" >&2; }

if [[ ! -f "$BOOT/edgefleet-agent.yaml" ]]; then
    log "no $BOOT/edgefleet-agent.yaml; nothing to do"
    exit 0
fi

real_system() { [[ -z "$ROOT" ]]; }

if real_system && ! id edgefleet >/dev/null 2>&1; then
    useradd --system --home-dir /var/lib/edgefleet --shell /usr/sbin/nologin edgefleet
    getent group gpio >/dev/null && usermod -aG gpio edgefleet
fi

install -d -m 0755 "$ETC"
install -d -m 0750 "$DATA"
install -m 0644 "$BOOT/edgefleet-agent.yaml" "$ETC/agent.yaml"
if [[ -f "$BOOT/edgefleet-agent.env" ]]; then
    install -m 0600 "$BOOT/edgefleet-agent.env" "$ETC/agent.env"
    rm -f "$BOOT/edgefleet-agent.env"
    log "secrets moved to $ETC/agent.env"
fi

if [[ -x "$EDGEFLEET" ]]; then
    # a broken config should fail here, loudly, not in a restart loop later
    "$EDGEFLEET" agent check-config --config "$ETC/agent.yaml"
    # does the engine run on this CPU, is the broker reachable with this login: into the
    # journal now; not fatal (the network may come later, and the agent reports it too)
    "$EDGEFLEET" doctor agent --config "$ETC/agent.yaml" || log "doctor found problems (above)"
fi

if real_system; then
    chown -R edgefleet:edgefleet "$DATA"
    chown root:edgefleet "$ETC/agent.env" 2>/dev/null && chmod 0640 "$ETC/agent.env" || true
    systemctl enable --now edgefleet-agent.service
    systemctl disable edgefleet-firstboot.service
fi
mv "$BOOT/edgefleet-agent.yaml" "$BOOT/edgefleet-agent.yaml.applied"
log "done"
