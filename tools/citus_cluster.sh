#!/usr/bin/env bash
# A Citus cluster on this machine for the scale-out layout (docs/scale-out.md):
#   tools/citus_cluster.sh up     build Citus once (cached), start a coordinator and two workers,
#                                 register the workers; the last line printed is the coordinator's URL
#   tools/citus_cluster.sh down   stop the three servers (their data stays for the next `up`)
#   tools/citus_cluster.sh purge  stop them and delete their data directories (CI's cluster is
#                                 throwaway: the next `up` starts from nothing)
#   tools/citus_cluster.sh url    print the coordinator's URL
# `./dev cluster up|down` calls this. Running `up` again is safe: a finished build is reused, running
# servers are left running, and registration is skipped for workers already registered.
#
# The servers are the system's PostgreSQL 15 (Debian's postgresql-15), each a private cluster with
# its own data directory outside the repository, listening on loopback only. Citus 13.2.2 is the
# last line for PostgreSQL 15; its source comes from the tarball beside the clone
# (../shared/vendor/, resolved from the repository root), since no package registry here has it.
#
# Settings (environment): LEDGER_CLUSTER_PORT (coordinator port, default 55432; the workers take
# the next two), LEDGER_CLUSTER_DIR (data directories), LEDGER_CITUS_CACHE (the build cache),
# LEDGER_CITUS_TARBALL (another copy of the same source).
set -euo pipefail

repo_root="$(cd "$(dirname "$0")/.." && pwd)"
citus_version=13.2.2
pg_major=15
pg_bin="/usr/lib/postgresql/$pg_major/bin"
tarball="${LEDGER_CITUS_TARBALL:-$(dirname "$repo_root")/shared/vendor/citus-$citus_version.tar.gz}"
cache_root="${XDG_CACHE_HOME:-$HOME/.cache}/ledger-core"
build_dir="${LEDGER_CITUS_CACHE:-$cache_root/citus-$citus_version-pg$pg_major}"
port_base="${LEDGER_CLUSTER_PORT:-55432}"
ports=("$port_base" "$((port_base + 1))" "$((port_base + 2))")
names=(coordinator worker1 worker2)
is_root=0
[ "$(id -u)" = 0 ] && is_root=1
if [ "$is_root" = 1 ]; then
  # postgres refuses to run as root: the servers run as Debian's `postgres` system user, which
  # cannot enter root's home, so their data lives under /var/lib.
  cluster_dir="${LEDGER_CLUSTER_DIR:-/var/lib/ledger-core/citus-cluster}"
else
  cluster_dir="${LEDGER_CLUSTER_DIR:-${XDG_STATE_HOME:-$HOME/.local/state}/ledger-core/citus-cluster}"
fi

say() { echo "cluster: $*" >&2; }

as_server_user() {
  if [ "$is_root" = 1 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

install_build_packages() {
  local missing=()
  [ -x "$pg_bin/postgres" ] || missing+=("postgresql-$pg_major")
  [ -f "/usr/include/postgresql/$pg_major/server/postgres.h" ] || missing+=("postgresql-server-dev-$pg_major")
  # What Citus's configure asks for: libcurl (statistics collection, which it can do without but
  # checks for), lz4 and zstd (columnar compression), and the toolchain.
  [ -f /usr/include/lz4.h ] || missing+=(liblz4-dev)
  [ -f /usr/include/zstd.h ] || missing+=(libzstd-dev)
  [ -d /usr/include/x86_64-linux-gnu/curl ] || [ -d /usr/include/curl ] || missing+=(libcurl4-openssl-dev)
  # The server's own headers (libpq/libpq-be.h) include OpenSSL's and GSSAPI's, since Debian's
  # server is built with both; postgresql-server-dev does not pull them in.
  [ -f /usr/include/openssl/ssl.h ] || missing+=(libssl-dev)
  [ -f /usr/include/gssapi/gssapi.h ] || missing+=(libkrb5-dev)
  command -v gcc >/dev/null || missing+=(gcc)
  command -v make >/dev/null || missing+=(make)
  [ ${#missing[@]} = 0 ] && return 0
  if [ "$is_root" = 1 ] && command -v apt-get >/dev/null; then
    say "installing ${missing[*]} (once) ..."
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    say "needs: ${missing[*]} (e.g. sudo apt-get install ${missing[*]})"
    exit 1
  fi
}

pg_config_bin() {
  if [ -x "$pg_bin/pg_config" ]; then echo "$pg_bin/pg_config"; else echo /usr/bin/pg_config; fi
}

installed_citus_version() {
  local control
  control="$("$(pg_config_bin)" --sharedir)/extension/citus.control"
  [ -f "$control" ] && [ -f "$("$(pg_config_bin)" --pkglibdir)/citus.so" ] \
    && sed -n "s/^default_version = '\(.*\)'/\1/p" "$control"
}

build_citus() {
  install_build_packages
  local pg_config
  pg_config="$(pg_config_bin)"
  if [ ! -f "$build_dir/.built" ]; then
    [ -f "$tarball" ] || { say "the Citus source is not at $tarball (set LEDGER_CITUS_TARBALL)"; exit 1; }
    say "building Citus $citus_version for PostgreSQL $pg_major into $build_dir (once; several minutes)"
    rm -rf "$build_dir"
    mkdir -p "$build_dir"
    tar -xzf "$tarball" -C "$build_dir" --strip-components=1
    # PostgreSQL 15.x minor releases since 15.14 declare have_createdb_privilege() in
    # commands/dbcommands.h (it was made extern for the fix that also went into 16). Citus
    # 13.2.2 defines its own static inline copy for servers before 16, and the two declarations
    # clash (static after extern). When the server's header has it, this build drops Citus's
    # copy; the server's function checks the same thing (superuser or rolcreatedb).
    if grep -q 'extern bool have_createdb_privilege' "$("$pg_config" --includedir-server)/commands/dbcommands.h"; then
      perl -0pi -e 's/static inline bool\nhave_createdb_privilege\(void\)\n\{.*?\n\}\n//s' \
        "$build_dir/src/include/pg_version_compat.h"
      if grep -q '^have_createdb_privilege(void)' "$build_dir/src/include/pg_version_compat.h"; then
        say "could not take Citus's own have_createdb_privilege out of the build copy"; exit 1
      fi
    fi
    (
      cd "$build_dir"
      say "configure ..."
      PG_CONFIG="$pg_config" ./configure --quiet >configure.log 2>&1 \
        || { tail -30 configure.log >&2; exit 1; }
      say "make -j$(nproc) (one line per compiled file) ..."
      # with_llvm=no: no LLVM bitcode for JIT inlining (the server's build has JIT, so PGXS would
      # compile every file twice); the ledger turns JIT off for its statements anyway.
      # The pipeline's status is make's (set +e: with -e and pipefail a failing make would end
      # the subshell here, silently, before its log is shown).
      set +e
      make -j"$(nproc)" with_llvm=no 2>&1 | tee make.log | grep --line-buffered -E '^(gcc|clang|cc) ' \
        | sed -u -E 's/.* -o ([^ ]+) .*/  compiled \1/; s/^(gcc|clang|cc) .*/  linked/' >&2
      make_status=${PIPESTATUS[0]}
      set -e
      if [ "$make_status" != 0 ]; then
        grep -E 'error:|\*\*\*' make.log | tail -20 >&2
        say "the Citus build failed (make exited $make_status); the whole log is $build_dir/make.log"
        exit 1
      fi
    )
    touch "$build_dir/.built"
  fi
  # The server's extension directories are shared with the system: install there (root), once
  # per server install. A later `up` with the same version installed skips this.
  if [ "$(installed_citus_version || true)" != "$(sed -n "s/^default_version = '\(.*\)'/\1/p" "$build_dir/src/backend/distributed/citus.control")" ]; then
    say "installing Citus into $("$pg_config" --pkglibdir) ..."
    if [ "$is_root" = 1 ]; then
      make -C "$build_dir" with_llvm=no install >"$build_dir/install.log" 2>&1 || { tail -20 "$build_dir/install.log" >&2; exit 1; }
    else
      sudo make -C "$build_dir" with_llvm=no install >"$build_dir/install.log" 2>&1 || { tail -20 "$build_dir/install.log" >&2; exit 1; }
    fi
  fi
}

node_url() { echo "postgresql://postgres@127.0.0.1:$1/postgres"; }

psql_at() {
  local port=$1; shift
  PGOPTIONS="-c client_min_messages=warning" "$pg_bin/psql" -X -q -v ON_ERROR_STOP=1 -At -h 127.0.0.1 -p "$port" -U postgres -d postgres "$@"
}

start_node() {
  local name=$1 port=$2 data="$cluster_dir/$1"
  if [ ! -f "$data/PG_VERSION" ]; then
    say "initdb $name ..."
    mkdir -p "$data"
    [ "$is_root" = 1 ] && chown -R postgres:postgres "$cluster_dir"
    as_server_user "$pg_bin/initdb" -D "$data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
    cat >>"$data/postgresql.conf" <<EOF
# ledger-core citus cluster ($name)
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = ''
shared_preload_libraries = 'citus'
max_connections = 300
max_prepared_transactions = 200
fsync = off
synchronous_commit = off
full_page_writes = off
shared_buffers = 128MB
wal_level = logical
citus.enable_unsafe_triggers = on
# The coordinator's copy of a reference table fires the ledger's triggers, which write other
# tables (ledger.on_worker_node keeps the workers' copies from doing the same).
citus.allow_nested_distributed_execution = on
EOF
  fi
  # Citus runs a maintenance daemon (two-phase commit recovery, deadlock detection) per
  # database, each a background worker: the test suite keeps a database per test worker and
  # templates, past the default of 8. Added to clusters made before this line was written too.
  grep -q '^max_worker_processes' "$data/postgresql.conf" \
    || echo "max_worker_processes = 64" >>"$data/postgresql.conf"
  if as_server_user "$pg_bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    return 0
  fi
  say "starting $name on 127.0.0.1:$port ..."
  as_server_user "$pg_bin/pg_ctl" -D "$data" -l "$data/server.log" -w -t 60 start >/dev/null \
    || { tail -20 "$data/server.log" >&2; exit 1; }
}

cluster_up() {
  build_citus
  mkdir -p "$cluster_dir"
  [ "$is_root" = 1 ] && chown postgres:postgres "$cluster_dir"
  for i in 0 1 2; do start_node "${names[$i]}" "${ports[$i]}"; done
  for port in "${ports[@]}"; do psql_at "$port" -c "create extension if not exists citus"; done
  # The ledger's roles are nologin on the coordinator and login on the workers, where Citus
  # connects as them (`migrate` makes them so; docs/scale-out.md, "Roles"). Citus would copy the
  # coordinator's attributes onto the workers' roles whenever a session sends a role to them as
  # the dependency of an object it distributes (a migration of any database): not on this
  # cluster. Set here rather than at initdb so that a cluster made before takes it too.
  for port in "${ports[@]}"; do
    if [ "$(psql_at "$port" -c "show citus.enable_alter_role_propagation")" != off ]; then
      psql_at "$port" -c "alter system set citus.enable_alter_role_propagation = off" -c "select pg_reload_conf()" >/dev/null
    fi
  done
  psql_at "${ports[0]}" -c "select citus_set_coordinator_host('127.0.0.1', ${ports[0]})" >/dev/null
  for port in "${ports[@]:1}"; do
    if [ "$(psql_at "${ports[0]}" -c "select count(*) from pg_dist_node where nodeport = $port")" = 0 ]; then
      say "registering worker 127.0.0.1:$port ..."
      psql_at "${ports[0]}" -c "select citus_add_node('127.0.0.1', $port)" >/dev/null
    fi
  done
  say "$(psql_at "${ports[0]}" -c "select count(*) from citus_get_active_worker_nodes()") workers active; Citus $(psql_at "${ports[0]}" -c "select extversion from pg_extension where extname = 'citus'")"
  node_url "${ports[0]}"
}

cluster_down() {
  for i in 2 1 0; do
    local data="$cluster_dir/${names[$i]}"
    if [ -f "$data/PG_VERSION" ] && as_server_user "$pg_bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
      say "stopping ${names[$i]} ..."
      as_server_user "$pg_bin/pg_ctl" -D "$data" -m fast -w stop >/dev/null
    fi
  done
}

case "${1:-}" in
  up) cluster_up ;;
  down) cluster_down ;;
  purge)
    cluster_down
    if [ -d "$cluster_dir" ]; then
      say "deleting $cluster_dir ..."
      rm -rf "$cluster_dir"
    fi ;;
  build) build_citus ;;
  url) node_url "${ports[0]}" ;;
  *) echo "usage: $0 up|down|purge|url|build" >&2; exit 2 ;;
esac
