#!/usr/bin/env bash
# edge node bootstrap: install edge, write its node configuration, install a hardened systemd
# unit and start it.
#
# cloud-init runs this once as root on first boot; both terraform fleet modules
# (modules/aws-edge-fleet, modules/gcp-edge-fleet) ship it through bootstrap/cloud-init.yaml.tftpl
# together with a settings file and the pinned TUF root. Running it again converges the node to
# the settings (it is idempotent), which is also how an operator repairs a node by hand.
#
# Usage: edge-bootstrap.sh [SETTINGS_FILE]
#   SETTINGS_FILE holds KEY=VALUE lines (no quoting, no shell evaluation: the file is data, so a
#   value can never run code). Keys not in SETTINGS below are refused. Without a file the same
#   keys are read from the environment.
#
# Settings (default in brackets):
#   EDGE_INSTALL_FROM     wheel | index                      [index]
#   EDGE_WHEEL_URL        s3://b/k.whl, gs://b/k.whl, https://..., file:///p.whl or /p.whl
#   EDGE_PACKAGE          requirement used with "index"       [edge-gateway]
#   EDGE_INDEX_URL        pip index URL (a private mirror)    [pip's default]
#   EDGE_BUNDLE_SOURCE    s3://bucket/prefix, gs://bucket/prefix, file:///dir   (required)
#   EDGE_TRUSTED_ROOT     pinned TUF root.json, already on disk [/etc/edge/trusted-root.json]
#   EDGE_PROXY_PROTOCOL   v1 | v2 | off, must match the load balancer           [off]
#   EDGE_TRUSTED_PROXIES  comma separated CIDRs allowed to send PROXY headers (required unless off)
#   EDGE_LISTEN_HOST      [0.0.0.0]
#   EDGE_HTTP_PORT        plain listener port                 [8080]
#   EDGE_TLS_PORT         TLS listener port (TLS passthrough at the LB); empty = none []
#   EDGE_ADMIN_ADDRESS    HOST:PORT of /healthz /readyz /status /metrics [127.0.0.1:9090]
#   EDGE_WORKERS          worker processes; empty = one per CPU []
#   EDGE_STATE_DIR        [/var/lib/edge]
#   EDGE_LOG_LEVEL        debug | info | warning | error  [info]
#   EDGE_POLL_INTERVAL    seconds between bundle checks       [30]
#   EDGE_NODE_ID          stable node id (canary bucketing)   [hostname]
#   EDGE_USER             system user the service runs as     [edge]
#   EDGE_NOFILE           LimitNOFILE                         [65536]
#   EDGE_AWS_REGION       region for the S3 client (boto3 does not read it from IMDS) []
#
# Test hooks (environment only, never in SETTINGS_FILE):
#   EDGE_ROOT   prefix for every path written (a temporary root); the unit and the node config
#               still name the un-prefixed paths, as the node will see them.
#   SYSTEMCTL, PIP, USERADD, CHOWN, PYTHON   replace those commands (e.g. with recorders).
#               With PIP set no virtualenv is created: the caller owns the environment.
#   FETCH_PYTHON  the python (with boto3 / google-cloud-storage) that fetches s3:// and gs://
#               wheels; default the virtualenv's.
set -euo pipefail

readonly SETTINGS=(
	EDGE_INSTALL_FROM EDGE_WHEEL_URL EDGE_PACKAGE EDGE_INDEX_URL EDGE_BUNDLE_SOURCE
	EDGE_TRUSTED_ROOT EDGE_PROXY_PROTOCOL EDGE_TRUSTED_PROXIES EDGE_LISTEN_HOST EDGE_HTTP_PORT
	EDGE_TLS_PORT EDGE_ADMIN_ADDRESS EDGE_WORKERS EDGE_STATE_DIR EDGE_LOG_LEVEL
	EDGE_POLL_INTERVAL EDGE_NODE_ID EDGE_USER EDGE_NOFILE EDGE_AWS_REGION
)

# Fixed layout: the unit and the node config refer to these, so they are not settings.
readonly CONFIG_DIR=/etc/edge
readonly PREFIX=/opt/edge
readonly UNIT_PATH=/etc/systemd/system/edge.service
readonly NODE_CONFIG="$CONFIG_DIR/node.yaml"

log() { printf 'edge-bootstrap: %s\n' "$*" >&2; }
die() {
	printf 'edge-bootstrap: error: %s\n' "$*" >&2
	exit 1
}

is_setting() {
	local key=$1 known
	for known in "${SETTINGS[@]}"; do
		[[ $key == "$known" ]] && return 0
	done
	return 1
}

load_settings() {
	local file=$1 line key value n=0
	[[ -r $file ]] || die "settings file $file is not readable"
	while IFS= read -r line || [[ -n $line ]]; do
		n=$((n + 1))
		[[ -z $line || $line == \#* ]] && continue
		[[ $line == *=* ]] || die "$file:$n: expected KEY=VALUE"
		key=${line%%=*}
		value=${line#*=}
		is_setting "$key" || die "$file:$n: unknown setting '$key'"
		printf -v "$key" '%s' "$value"
		export "${key?}"
	done <"$file"
}

# --- validation: every value ends up in YAML or a unit file, so each is checked against a
# --- pattern that cannot carry quotes, newlines or spaces.

want() { # want NAME REGEX WHAT
	local name=$1 re=$2 what=$3
	[[ ${!name} =~ $re ]] || die "$name: '${!name}' is not $what"
}

want_port() {
	local name=$1
	want "$name" '^[0-9]{1,5}$' "a port number"
	((10#${!name} >= 1 && 10#${!name} <= 65535)) || die "$name: '${!name}' is not a port (1-65535)"
}

want_cidr_list() {
	local name=$1 cidr
	local -a cidrs
	IFS=',' read -r -a cidrs <<<"${!name}"
	((${#cidrs[@]} > 0)) || die "$name: at least one CIDR is required"
	for cidr in "${cidrs[@]}"; do
		[[ $cidr =~ ^[0-9A-Fa-f.:]+/[0-9]{1,3}$ ]] || die "$name: '$cidr' is not a CIDR"
	done
}

readonly URL_RE='^(s3|gs|https|file)://[A-Za-z0-9._~/%+=@:-]+$|^/[A-Za-z0-9._~/%+=@:-]+$'
readonly HOSTPORT_RE='^(\[[0-9A-Fa-f:]+\]|[0-9A-Za-z.-]+):[0-9]{1,5}$'

defaults() {
	: "${EDGE_INSTALL_FROM:=index}" "${EDGE_WHEEL_URL:=}" "${EDGE_PACKAGE:=edge-gateway}"
	: "${EDGE_INDEX_URL:=}" "${EDGE_BUNDLE_SOURCE:=}" "${EDGE_TRUSTED_ROOT:=$CONFIG_DIR/trusted-root.json}"
	: "${EDGE_PROXY_PROTOCOL:=off}" "${EDGE_TRUSTED_PROXIES:=}" "${EDGE_LISTEN_HOST:=0.0.0.0}"
	: "${EDGE_HTTP_PORT:=8080}" "${EDGE_TLS_PORT:=}" "${EDGE_ADMIN_ADDRESS:=127.0.0.1:9090}"
	: "${EDGE_WORKERS:=}" "${EDGE_STATE_DIR:=/var/lib/edge}" "${EDGE_LOG_LEVEL:=info}"
	: "${EDGE_POLL_INTERVAL:=30}" "${EDGE_NODE_ID:=}" "${EDGE_USER:=edge}" "${EDGE_NOFILE:=65536}"
	: "${EDGE_AWS_REGION:=}"
	if [[ -z $EDGE_NODE_ID ]]; then
		EDGE_NODE_ID=$(hostname 2>/dev/null || cat /etc/hostname)
	fi
}

validate() {
	case $EDGE_INSTALL_FROM in
	wheel)
		[[ -n $EDGE_WHEEL_URL ]] || die "EDGE_WHEEL_URL: required when EDGE_INSTALL_FROM=wheel"
		want EDGE_WHEEL_URL "$URL_RE" "an s3://, gs://, https://, file:// URL or an absolute path"
		[[ $EDGE_WHEEL_URL == *.whl ]] || die "EDGE_WHEEL_URL: '$EDGE_WHEEL_URL' does not name a .whl file"
		;;
	index) want EDGE_PACKAGE '^[A-Za-z0-9._-]+(\[[A-Za-z0-9,._-]+\])?([=<>!~]=?[A-Za-z0-9.*+!-]+)?$' "a pip requirement" ;;
	*) die "EDGE_INSTALL_FROM: '$EDGE_INSTALL_FROM' is not one of wheel, index" ;;
	esac
	[[ -z $EDGE_INDEX_URL ]] || want EDGE_INDEX_URL '^https://[A-Za-z0-9._~/%+=@:-]+$' "an https:// URL"
	[[ -n $EDGE_BUNDLE_SOURCE ]] || die "EDGE_BUNDLE_SOURCE: required"
	want EDGE_BUNDLE_SOURCE "$URL_RE" "an s3://, gs://, file:// URL or an absolute path"
	want EDGE_TRUSTED_ROOT '^/[A-Za-z0-9._/-]+$' "an absolute path"
	case $EDGE_PROXY_PROTOCOL in
	v1 | v2) want_cidr_list EDGE_TRUSTED_PROXIES ;;
	off) [[ -z $EDGE_TRUSTED_PROXIES ]] || want_cidr_list EDGE_TRUSTED_PROXIES ;;
	*) die "EDGE_PROXY_PROTOCOL: '$EDGE_PROXY_PROTOCOL' is not one of v1, v2, off" ;;
	esac
	want EDGE_LISTEN_HOST '^[0-9A-Fa-f.:]+$' "an IP address"
	want_port EDGE_HTTP_PORT
	[[ -z $EDGE_TLS_PORT ]] || want_port EDGE_TLS_PORT
	want EDGE_ADMIN_ADDRESS "$HOSTPORT_RE" "HOST:PORT"
	[[ -z $EDGE_WORKERS ]] || want EDGE_WORKERS '^[1-9][0-9]{0,3}$' "a worker count (1-9999)"
	want EDGE_STATE_DIR '^/[A-Za-z0-9._/-]+$' "an absolute path"
	[[ $EDGE_STATE_DIR != / && $EDGE_STATE_DIR != */ ]] || die "EDGE_STATE_DIR: '$EDGE_STATE_DIR' must name a directory below /"
	want EDGE_LOG_LEVEL '^(debug|info|warning|error)$' "one of debug, info, warning, error"
	want EDGE_POLL_INTERVAL '^[0-9]+(\.[0-9]+)?$' "a number of seconds"
	want EDGE_NODE_ID '^[A-Za-z0-9._-]{1,128}$' "a node id ([A-Za-z0-9._-], at most 128)"
	want EDGE_USER '^[a-z_][a-z0-9_-]{0,31}$' "a system user name"
	[[ $EDGE_USER != root ]] || die "EDGE_USER: the service must not run as root"
	want EDGE_NOFILE '^[1-9][0-9]{2,7}$' "a file descriptor limit"
	[[ -z $EDGE_AWS_REGION ]] || want EDGE_AWS_REGION '^[a-z]{2}(-[a-z]+)+-[0-9]+$' "an AWS region"
}

# --- steps

create_user() {
	# The temporary root has its own passwd file; getent would read the host's.
	if grep -q "^$EDGE_USER:" "$ROOT/etc/passwd" 2>/dev/null; then
		log "user $EDGE_USER exists"
		return
	fi
	log "creating system user $EDGE_USER"
	"$USERADD" --system --user-group --no-create-home --home-dir "$EDGE_STATE_DIR" \
		--shell /usr/sbin/nologin "$EDGE_USER"
}

make_dirs() {
	install -d -m 0755 "$ROOT$CONFIG_DIR" "$ROOT$PREFIX" "$ROOT$(dirname "$UNIT_PATH")"
	# The state dir holds last-known-good bundles: only the service reads it.
	install -d -m 0750 "$ROOT$EDGE_STATE_DIR"
	"$CHOWN" "$EDGE_USER:$EDGE_USER" "$ROOT$EDGE_STATE_DIR"
}

# fetch URL DEST: the cloud SDKs come from the virtualenv (edge depends on them anyway), so no
# cloud CLI has to be on the image. Called from an || list, where set -e is off: every step
# that can fail returns explicitly.
fetch() {
	local url=$1 dest=$2
	case $url in
	s3://*)
		"$PIP" install --no-input --quiet "${PIP_INDEX_ARGS[@]}" boto3 || return 1
		"$FETCH_PYTHON" - "$url" "$dest" <<'PY'
import sys
from urllib.parse import urlsplit

import boto3

u = urlsplit(sys.argv[1])
try:
    boto3.client("s3").download_file(u.netloc, u.path.lstrip("/"), sys.argv[2])
except Exception as exc:  # one line for the cloud-init log, not a traceback
    sys.exit(f"edge-bootstrap: {sys.argv[1]}: {type(exc).__name__}: {exc}")
PY
		;;
	gs://*)
		"$PIP" install --no-input --quiet "${PIP_INDEX_ARGS[@]}" google-cloud-storage || return 1
		"$FETCH_PYTHON" - "$url" "$dest" <<'PY'
import sys
from urllib.parse import urlsplit

from google.cloud import storage

u = urlsplit(sys.argv[1])
try:
    storage.Client().bucket(u.netloc).blob(u.path.lstrip("/")).download_to_filename(sys.argv[2])
except Exception as exc:  # one line for the cloud-init log, not a traceback
    sys.exit(f"edge-bootstrap: {sys.argv[1]}: {type(exc).__name__}: {exc}")
PY
		;;
	https://*) curl --fail --silent --show-error --location --proto '=https' -o "$dest" "$url" ;;
	file://*) cp -- "${url#file://}" "$dest" ;;
	/*) cp -- "$url" "$dest" ;;
	esac
}

install_edge() {
	if [[ -z ${PIP:-} ]]; then
		log "creating virtualenv $PREFIX/venv"
		"$PYTHON" -m venv "$ROOT$PREFIX/venv"
		PIP="$ROOT$PREFIX/venv/bin/pip"
	fi
	FETCH_PYTHON="${FETCH_PYTHON:-$ROOT$PREFIX/venv/bin/python}"
	PIP_INDEX_ARGS=()
	[[ -z $EDGE_INDEX_URL ]] || PIP_INDEX_ARGS=(--index-url "$EDGE_INDEX_URL")
	if [[ $EDGE_INSTALL_FROM == wheel ]]; then
		local dist="$ROOT$PREFIX/dist" wheel
		install -d -m 0755 "$dist"
		# pip needs the wheel's own file name (it encodes name, version and tags).
		wheel="$dist/$(basename "$EDGE_WHEEL_URL")"
		log "fetching $EDGE_WHEEL_URL"
		fetch "$EDGE_WHEEL_URL" "$wheel" || die "EDGE_WHEEL_URL: cannot fetch $EDGE_WHEEL_URL"
		[[ -s $wheel ]] || die "EDGE_WHEEL_URL: $EDGE_WHEEL_URL fetched empty"
		log "installing $(basename "$wheel")"
		"$PIP" install --no-input "${PIP_INDEX_ARGS[@]}" "$wheel"
	else
		log "installing $EDGE_PACKAGE from the package index"
		"$PIP" install --no-input "${PIP_INDEX_ARGS[@]}" "$EDGE_PACKAGE"
	fi
}

check_trusted_root() {
	local path="$ROOT$EDGE_TRUSTED_ROOT"
	[[ -s $path ]] || die "EDGE_TRUSTED_ROOT: $EDGE_TRUSTED_ROOT is missing or empty"
	"$PYTHON" - "$path" <<'PY' || die "EDGE_TRUSTED_ROOT: $EDGE_TRUSTED_ROOT is not TUF root metadata"
import json
import sys

with open(sys.argv[1], encoding="utf-8") as f:
    doc = json.load(f)
sys.exit(0 if doc.get("signed", {}).get("_type") == "root" else 1)
PY
	chmod 0644 "$path"
}

# write_file PATH MODE: stdin to PATH, atomically, so a crash never leaves half a config.
write_file() {
	local path=$1 mode=$2 tmp
	tmp=$(mktemp "$path.XXXXXX")
	cat >"$tmp"
	chmod "$mode" "$tmp"
	mv -f -- "$tmp" "$path"
}

listener_yaml() { # listener_yaml PORT TLS
	local port=$1 tls=$2 proxies="" cidr
	local -a cidrs=()
	[[ -z $EDGE_TRUSTED_PROXIES ]] || IFS=',' read -r -a cidrs <<<"$EDGE_TRUSTED_PROXIES"
	for cidr in "${cidrs[@]}"; do
		proxies+="${proxies:+, }\"$cidr\""
	done
	local host=$EDGE_LISTEN_HOST
	[[ $host != *:* ]] || host="[$host]"
	printf '  - address: "%s:%s"\n    tls: %s\n    proxy_protocol: "%s"\n    trusted_proxies: [%s]\n' \
		"$host" "$port" "$tls" "$EDGE_PROXY_PROTOCOL" "$proxies"
}

write_node_config() {
	log "writing $NODE_CONFIG"
	{
		printf '# Written by edge-bootstrap.sh from the terraform settings; re-run it to change.\n'
		# "off" is quoted everywhere: unquoted, YAML 1.1 reads it as the boolean false.
		printf 'listeners:\n'
		listener_yaml "$EDGE_HTTP_PORT" false
		[[ -z $EDGE_TLS_PORT ]] || listener_yaml "$EDGE_TLS_PORT" true
		printf 'admin: "%s"\n' "$EDGE_ADMIN_ADDRESS"
		[[ -z $EDGE_WORKERS ]] || printf 'workers: %s\n' "$EDGE_WORKERS"
		printf 'state_dir: "%s"\n' "$EDGE_STATE_DIR"
		printf 'log_level: "%s"\n' "$EDGE_LOG_LEVEL"
		printf 'bundle_source: "%s"\n' "$EDGE_BUNDLE_SOURCE"
		printf 'trusted_root: "%s"\n' "$EDGE_TRUSTED_ROOT"
		printf 'poll_interval: %s\n' "$EDGE_POLL_INTERVAL"
		printf 'node_id: "%s"\n' "$EDGE_NODE_ID"
	} | write_file "$ROOT$NODE_CONFIG" 0640
	# Readable by the service user, writable by root only.
	"$CHOWN" "root:$EDGE_USER" "$ROOT$NODE_CONFIG"
}

lowest_port() {
	local lowest=$EDGE_HTTP_PORT admin_port=${EDGE_ADMIN_ADDRESS##*:}
	[[ -z $EDGE_TLS_PORT ]] || ((10#$EDGE_TLS_PORT >= 10#$lowest)) || lowest=$EDGE_TLS_PORT
	((10#$admin_port >= 10#$lowest)) || lowest=$admin_port
	printf '%d' "$((10#$lowest))"
}

write_unit() {
	local caps="CapabilityBoundingSet=" env_lines=""
	if (($(lowest_port) < 1024)); then
		# Ports below 1024 need exactly one capability, granted without running as root.
		caps=$'CapabilityBoundingSet=CAP_NET_BIND_SERVICE\nAmbientCapabilities=CAP_NET_BIND_SERVICE'
	fi
	[[ -z $EDGE_AWS_REGION ]] || env_lines="Environment=AWS_DEFAULT_REGION=$EDGE_AWS_REGION"
	log "installing $UNIT_PATH"
	write_file "$ROOT$UNIT_PATH" 0644 <<EOF
# Written by edge-bootstrap.sh; re-run it to change.
[Unit]
Description=edge API gateway
Wants=network-online.target
After=network-online.target

[Service]
Type=simple
User=$EDGE_USER
Group=$EDGE_USER
ExecStart=$PREFIX/venv/bin/edge run --node $NODE_CONFIG
ExecReload=/bin/kill -HUP \$MAINPID
# The supervisor drains workers on SIGTERM (grace period 30 s by default); KillMode=mixed
# signals it alone first and only kills the rest if the drain overruns TimeoutStopSec.
KillMode=mixed
TimeoutStopSec=45
Restart=on-failure
RestartSec=2
LimitNOFILE=$EDGE_NOFILE
Environment=PYTHONUNBUFFERED=1
$env_lines
UMask=0027

NoNewPrivileges=yes
$caps
ProtectSystem=strict
ReadWritePaths=$EDGE_STATE_DIR
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
RestrictSUIDSGID=yes
RestrictRealtime=yes
RestrictNamespaces=yes
LockPersonality=yes
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX
SystemCallArchitectures=native
# MemoryDenyWriteExecute is deliberately absent: wasmtime compiles plugins to native code
# in writable-then-executable memory, which that setting forbids.

[Install]
WantedBy=multi-user.target
EOF
}

start_service() {
	log "enabling and (re)starting edge.service"
	"$SYSTEMCTL" daemon-reload
	"$SYSTEMCTL" enable edge.service
	# restart rather than start: a re-run must pick up a changed config or unit.
	"$SYSTEMCTL" restart edge.service
}

main() {
	(($# <= 1)) || die "usage: edge-bootstrap.sh [SETTINGS_FILE]"
	[[ $# -eq 0 ]] || load_settings "$1"
	ROOT=${EDGE_ROOT:-}
	ROOT=${ROOT%/}
	[[ -z $ROOT || $ROOT == /* ]] || die "EDGE_ROOT: '$ROOT' must be an absolute path"
	SYSTEMCTL=${SYSTEMCTL:-systemctl}
	USERADD=${USERADD:-useradd}
	CHOWN=${CHOWN:-chown}
	PYTHON=${PYTHON:-python3}
	defaults
	validate
	umask 022
	create_user
	make_dirs
	check_trusted_root
	install_edge
	write_node_config
	write_unit
	start_service
	log "done: node $EDGE_NODE_ID, bundle source $EDGE_BUNDLE_SOURCE"
}

main "$@"
