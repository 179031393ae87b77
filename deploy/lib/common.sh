# Shared by deploy/dev/run and tests/run: packages, build, and a private PostgreSQL.
# shellcheck shell=bash

APPROVALD_PACKAGES=(cmake ninja-build g++ pkg-config ccache python3
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libpq-dev libabsl-dev libspdlog-dev libgtest-dev libgmock-dev libssl-dev
  postgresql-15 postgresql-client-15 python3-grpcio python3-protobuf libyaml-cpp-dev libre2-dev libjemalloc-dev
  libmicrohttpd-dev libgnutls28-dev libcurl4-openssl-dev)
PG_BIN=/usr/lib/postgresql/15/bin

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# Installs whatever Debian package is missing (apt-get update only when needed).
ensure_packages() {
  local missing=() p
  for p in "${APPROVALD_PACKAGES[@]}" "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing: ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# build_project BUILD_DIR [cmake args...]
build_project() {
  local dir=$1; shift
  # Let clones in other folders share the compiler cache.
  export CCACHE_BASEDIR="$APPROVALD_ROOT" CCACHE_NOHASHDIR=1
  cmake -S "$APPROVALD_ROOT" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
  cmake --build "$dir" -j2
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# Runs a command as the unprivileged owner of the cluster (initdb and postgres refuse root).
as_pg_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# pg_init DATADIR: a new cluster with trust auth for local connections.
pg_init() {
  local data=$1
  mkdir -p "$data"
  [ "$(id -u)" -eq 0 ] && chown postgres:postgres "$data" && chmod 700 "$data"
  as_pg_owner "$PG_BIN/initdb" -D "$data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
}

# pg_start DATADIR PORT SOCKETDIR [extra -c settings...]
pg_start() {
  local data=$1 port=$2 sock=$3; shift 3
  mkdir -p "$sock"
  [ "$(id -u)" -eq 0 ] && chown postgres:postgres "$sock"
  local opts="-c listen_addresses=127.0.0.1 -p $port -k $sock"
  local s
  for s in "$@"; do opts="$opts -c $s"; done
  as_pg_owner "$PG_BIN/pg_ctl" -D "$data" -l "$data/server.log" -o "$opts" -w -t 60 start >/dev/null
}

pg_stop() {
  local data=$1
  as_pg_owner "$PG_BIN/pg_ctl" -D "$data" -m fast -w stop >/dev/null 2>&1 || true
}
