# Shared by ./dev and scripts/*.sh: packages, build, private servers.
# shellcheck shell=bash

ROOT=${ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
JOBS=${JOBS:-$(nproc 2>/dev/null || echo 2)}

# Everything the build, the tests, the demo and the benchmarks need, all Debian packages.
PACKAGES=(
  build-essential cmake pkg-config ccache git
  libpqxx-dev libpq-dev libcpprest-dev libboost-dev libssl-dev libyaml-cpp-dev prometheus-cpp-dev
  libspdlog-dev libfmt-dev librabbitmq-dev nlohmann-json3-dev libcli11-dev libcpp-httplib-dev libwebsocketpp-dev
  libgtest-dev libgmock-dev libbenchmark-dev clang-format clang-tidy python3
  golang-go golang-github-masterminds-sprig-dev golang-gopkg-yaml.v2-dev golang-gopkg-yaml.v3-dev golang-github-xeipuuv-gojsonschema-dev
  postgresql postgresql-contrib procps bc curl openssl prometheus prometheus-pushgateway rabbitmq-server
)

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

as_root() {
  if [[ $(id -u) -eq 0 ]]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "need root (or sudo) to run: $*" >&2; return 1
  fi
}

# ensure_packages [PKG...]: installs those of PKG (default: PACKAGES) that are missing.
ensure_packages() {
  local missing=() wanted=("$@")
  ((${#wanted[@]})) || wanted=("${PACKAGES[@]}")
  for p in "${wanted[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if ((${#missing[@]})); then
    log "installing Debian packages: ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
  fi
}

# build_tree DIR [cmake args...]
build_tree() {
  local dir=$1
  shift
  log "building $dir"
  local launcher=()
  command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  cmake -S "$ROOT" -B "$ROOT/$dir" -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-RelWithDebInfo}" "${launcher[@]}" "$@" >/dev/null
  cmake --build "$ROOT/$dir" -j"$JOBS"
}

pg_bin() {
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  [[ -n "$dir" ]] || { echo "PostgreSQL server binaries not found under /usr/lib/postgresql" >&2; return 1; }
  echo "$dir"
}

free_port() {
  local port=${1:-55432}
  while (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do port=$((port + 1)); done
  echo "$port"
}

# pg_start: a private cluster in a temp dir on 127.0.0.1; exports PGHOST/PGPORT/PGUSER.
pg_start() {
  local bin
  bin=$(pg_bin)
  PG_DIR=$(mktemp -d /tmp/backstop-pg.XXXXXX)
  PGPORT=$(free_port "${1:-55432}")
  local run=()
  if [[ $(id -u) -eq 0 ]]; then
    chown postgres: "$PG_DIR"
    run=(runuser -u postgres --)
  fi
  "${run[@]}" "$bin/initdb" -D "$PG_DIR/data" -A trust -U postgres -E UTF8 --no-locale >"$PG_DIR/initdb.log" 2>&1 ||
    { cat "$PG_DIR/initdb.log" >&2; return 1; }
  # One role checks its password (tests of a wrong password); everyone else is trusted.
  { echo "host all backstop_password_check 127.0.0.1/32 scram-sha-256"; cat "$PG_DIR/data/pg_hba.conf"; } \
    >"$PG_DIR/pg_hba.conf" && "${run[@]}" cp "$PG_DIR/pg_hba.conf" "$PG_DIR/data/pg_hba.conf"
  "${run[@]}" "$bin/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -o \
    "-p $PGPORT -k $PG_DIR -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=${PG_FSYNC:-on} -c shared_buffers=256MB" \
    start >/dev/null || { cat "$PG_DIR/server.log" >&2; return 1; }
  export PGHOST=127.0.0.1 PGPORT PGUSER=postgres PG_DIR
  PATH="$bin:$PATH"
  export PATH
  log "PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$PGPORT (data in $PG_DIR)"
}

pg_stop() {
  [[ -n "${PG_DIR:-}" && -d "$PG_DIR/data" ]] || return 0
  local run=()
  [[ $(id -u) -eq 0 ]] && run=(runuser -u postgres --)
  "${run[@]}" "$(pg_bin)/pg_ctl" -D "$PG_DIR/data" -m fast -w stop >/dev/null 2>&1 || true
  rm -rf "$PG_DIR"
  PG_DIR=
}

# A private RabbitMQ node on 127.0.0.1:$1 in a temporary directory (its own
# Erlang cookie); exports AMQP_URL. rabbit_stop kills it and removes the data.
rabbit_start() {
  local port=$1
  RABBIT_DIR=$(mktemp -d /tmp/backstop-rabbit.XXXXXX)
  env HOME="$RABBIT_DIR" RABBITMQ_NODENAME="backstop-$port@localhost" RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 \
    RABBITMQ_NODE_PORT="$port" RABBITMQ_DIST_PORT=$((port + 1)) ERL_EPMD_ADDRESS=127.0.0.1 \
    RABBITMQ_MNESIA_BASE="$RABBIT_DIR/mnesia" RABBITMQ_LOG_BASE="$RABBIT_DIR/log" RABBITMQ_PID_FILE="$RABBIT_DIR/pid" \
    RABBITMQ_ENABLED_PLUGINS_FILE="$RABBIT_DIR/plugins" RABBITMQ_CONFIG_FILE="$RABBIT_DIR/rabbitmq" \
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}" \
    /usr/lib/rabbitmq/bin/rabbitmq-server -detached >"$RABBIT_DIR/start.log" 2>&1
  AMQP_URL="amqp://guest:guest@127.0.0.1:$port"
  export AMQP_URL
  for _ in $(seq 600); do
    [[ -s "$RABBIT_DIR/pid" ]] && (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.05
  done
  sleep 2  # the listener opens before the default user exists
  log "RabbitMQ on 127.0.0.1:$port (data in $RABBIT_DIR)"
}

rabbit_stop() {
  [[ -n "${RABBIT_DIR:-}" ]] || return 0
  [[ -s "$RABBIT_DIR/pid" ]] && kill -9 "$(cat "$RABBIT_DIR/pid")" 2>/dev/null || true
  rm -rf "$RABBIT_DIR"
  RABBIT_DIR=
}
