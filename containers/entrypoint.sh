#!/usr/bin/env bash
# corral-entrypoint: starts corrald in a container.
#
# The configuration comes from, in order of precedence:
#   1. a mounted file: /conf/corral.toml (Corral's format) or /conf/zoo.cfg
#      (ZooKeeper's); the environment is then ignored, with a note;
#   2. CORRAL_* variables;
#   3. the official ZooKeeper image's variables, every one of them, with its
#      defaults (ZOO_MY_ID, ZOO_SERVERS, ZOO_TICK_TIME 2000, ZOO_INIT_LIMIT 5,
#      ZOO_SYNC_LIMIT 2, ZOO_MAX_CLIENT_CNXNS 60, ZOO_4LW_COMMANDS_WHITELIST,
#      ZOO_STANDALONE_ENABLED, ZOO_ADMINSERVER_ENABLED, ZOO_CONF_DIR,
#      ZOO_DATA_DIR, ZOO_DATA_LOG_DIR, ZOO_LOG_DIR, ZOO_AUTOPURGE_*, ZOO_PORT,
#      ZOO_CFG_EXTRA's zoo.cfg keys) — so a compose file written for that
#      image runs Corral by changing the image name. One this image cannot
#      honour (ZOO_USER) or does not know stops the start, naming it.
# An ensemble's members prove to each other who they are with the secret in
# CORRAL_PEER_SECRET_FILE (or /run/secrets/corral_peer_secret), or with
# certificates (CORRAL_TLS=peer); without either the peer ports are as open
# as the official image's, with a warning.
# TLS: CORRAL_TLS lists the ports that speak it (client, peer, admin), with
# certificates from CORRAL_TLS_DIR (default /certs): server.<id>.pem or
# server.pem (chain and key), ca.pem (the authority) and, when present,
# crl.pem (the authority's revocation list, or CORRAL_TLS_CRL; reread when it
# changes, and open connections it revokes are closed). With client TLS the
# plaintext client port listens on loopback only (for the health check and
# tools inside the container) and clients use CORRAL_SECURE_CLIENT_PORT
# (2281). The official image's ZOO_CFG_EXTRA TLS keys (secureClientPort,
# sslQuorum, ssl.keyStore.location, ssl.trustStore.location, ssl.clientAuth,
# ssl.quorum.*) are read as well; a security key there this image cannot
# honour stops the container.
# A CORRAL_* and a ZOO_* variable that say different things, an unknown
# CORRAL_* variable, or a malformed value stop the container at once with a
# message naming the variable.
#
# Arguments: none starts the server; "corrald ARGS" or any other command runs
# that instead (e.g. `docker run IMAGE corral -s host:2181 ls /`);
# "--print-config" prints the configuration the environment makes.
set -euo pipefail

die() {
  echo "corral-entrypoint: $*" >&2
  exit 2
}

case "${1:-}" in
  corrald|corral|corral-wal|bash|sh) exec "$@" ;;
esac
print_only=false
if [ "${1:-}" = "--print-config" ]; then
  print_only=true
  shift
fi
[ $# -eq 0 ] || exec "$@"

# Every ZOO_* variable of the official image; anything else is refused.
KNOWN_ZOO="ZOO_MY_ID ZOO_SERVERS ZOO_TICK_TIME ZOO_INIT_LIMIT ZOO_SYNC_LIMIT ZOO_MAX_CLIENT_CNXNS
ZOO_4LW_COMMANDS_WHITELIST ZOO_STANDALONE_ENABLED ZOO_ADMINSERVER_ENABLED ZOO_CFG_EXTRA ZOO_CONF_DIR ZOO_DATA_DIR
ZOO_DATA_LOG_DIR ZOO_LOG_DIR ZOO_AUTOPURGE_PURGEINTERVAL ZOO_AUTOPURGE_SNAPRETAINCOUNT ZOO_PORT"
for var in $(compgen -e | grep '^ZOO_' || true); do
  case " $(echo $KNOWN_ZOO) " in
    *" $var "*) ;;
    *) if [ "$var" = ZOO_USER ]; then
         die "ZOO_USER: this image runs corrald as its own user (corral, uid 10001); run the container as another uid with --user instead"
       fi
       die "unknown variable $var (the official image's are: $(echo $KNOWN_ZOO | sed 's/ /, /g'))" ;;
  esac
done
for var in JVMFLAGS SERVER_JVMFLAGS ZK_SERVER_HEAP; do
  [ -z "${!var-}" ] || echo "corral-entrypoint: $var is for ZooKeeper's JVM; Corral has none, so it has no effect" >&2
done
same() {  # same CORRAL_VAR ZOO_VAR DEFAULT: one value, or stop if they differ
  local a=${!1-} b=${!2-}
  if [ -n "$a" ] && [ -n "$b" ] && [ "$a" != "$b" ]; then
    echo "corral-entrypoint: $1=$a and $2=$b disagree; set one of them" >&2
    exit 2
  fi
  printf '%s' "${a:-${b:-$3}}"
}
CONF_DIR=$(same CORRAL_CONF_DIR ZOO_CONF_DIR /conf)
DATA_DIR=$(same CORRAL_DATA_DIR ZOO_DATA_DIR /data)
USER_PLUGINS=${CORRAL_USER_PLUGIN_DIR:-/plugins}

# Every CORRAL_* variable this script reads; anything else is a typo.
KNOWN="CORRAL_SERVER_ID CORRAL_SERVERS CORRAL_DISCOVERY CORRAL_CLIENT_PORT CORRAL_TICK_MS CORRAL_INIT_LIMIT
CORRAL_SYNC_LIMIT CORRAL_MAX_CLIENT_CNXNS CORRAL_FOUR_LETTER_WORDS CORRAL_STANDALONE_ENABLED CORRAL_LOG_LEVEL
CORRAL_ADMIN_ADDRESS CORRAL_STORAGE CORRAL_ELECTION CORRAL_RECIPES CORRAL_ENSEMBLE_SIZE CORRAL_DOCKER_ENSEMBLE
CORRAL_DOCKER_SOCKET CORRAL_DNS_PATTERN CORRAL_DNS_REPLICAS CORRAL_ID_FROM_HOSTNAME CORRAL_ORDINAL_BASE
CORRAL_DNS_INTERVAL_MS CORRAL_SNAPSHOT_EVERY CORRAL_SUPER_DIGEST CORRAL_CONF_DIR CORRAL_DATA_DIR
CORRAL_USER_PLUGIN_DIR CORRAL_BUNDLE CORRAL_SERVER CORRAL_PEER_SECRET_FILE CORRAL_PEER_AUTH CORRAL_TLS
CORRAL_TLS_DIR CORRAL_TLS_CRL CORRAL_SECURE_CLIENT_PORT CORRAL_TLS_CLIENT_AUTH CORRAL_WAL_DIR
CORRAL_ADMIN_HOSTS"
for var in $(compgen -e | grep '^CORRAL_' || true); do
  # Kubernetes' service links for a service named corral (CORRAL_SERVICE_HOST,
  # CORRAL_PORT=tcp://..., CORRAL_PORT_2181_TCP...) are not settings.
  if [[ $var =~ _SERVICE_(HOST|PORT)(_|$) || $var =~ _PORT_[0-9]+_(TCP|UDP|SCTP) ]] ||
     [[ $var =~ _PORT$ && ${!var} =~ ^(tcp|udp|sctp):// ]]; then
    continue
  fi
  case " $(echo $KNOWN) " in
    *" $var "*) ;;
    *) die "unknown variable $var (known: $(echo $KNOWN | sed 's/ /, /g'))" ;;
  esac
done

# The installed plugins, then the directory users mount their own into.
installed=$(dirname "$(readlink -f "$(command -v corrald)")")/../lib
installed=$(find "$installed" -type d -path '*/corral/plugins' 2>/dev/null | head -1 || true)
plugin_dirs=""
[ -z "$installed" ] || plugin_dirs="\"$installed\""
[ ! -d "$USER_PLUGINS" ] || plugin_dirs="$plugin_dirs${plugin_dirs:+, }\"$USER_PLUGINS\""

# pick NAME CORRAL_VAR ZOO_VAR: the value of whichever is set; both set and
# different is an error naming both.
pick() {
  local corral_var=$1 zoo_var=$2 a b
  a=${!corral_var-}
  b=${zoo_var:+${!zoo_var-}}
  if [ -n "$a" ] && [ -n "$b" ] && [ "$a" != "$b" ]; then
    die "$corral_var=$a and $zoo_var=$b disagree; set one of them"
  fi
  printf '%s' "${a:-$b}"
}
source_of() {  # which variable set a value, for messages
  if [ -n "${!1-}" ]; then echo "$1"; else echo "$2"; fi
}
integer() {  # integer VAR VALUE MIN MAX
  [[ $2 =~ ^[0-9]+$ ]] && [ "$2" -ge "$3" ] && [ "$2" -le "$4" ] || die "$1 must be an integer from $3 to $4 (found '$2')"
}
boolean() {
  case "$2" in true|yes|1) echo true ;; false|no|0) echo false ;; *) die "$1 must be true or false (found '$2')" ;; esac
}
quote() {  # a TOML string
  local s=${1//\\/\\\\}
  printf '"%s"' "${s//\"/\\\"}"
}

if [ -f "$CONF_DIR/corral.toml" ] || [ -f "$CONF_DIR/zoo.cfg" ]; then
  if [ -n "$(compgen -e | grep -E '^(CORRAL_|ZOO_)' | grep -vE '^CORRAL_(BUNDLE|CONF_DIR|DATA_DIR|USER_PLUGIN_DIR|SERVER)$' || true)" ]; then
    echo "corral-entrypoint: using the mounted configuration in $CONF_DIR; CORRAL_*/ZOO_* variables are ignored (but ZOO_MY_ID/CORRAL_SERVER_ID, which become myid)" >&2
  fi
  if [ -f "$CONF_DIR/corral.toml" ]; then
    args=(--config "$CONF_DIR/corral.toml")
  else
    args=(--zoo-cfg "$CONF_DIR/zoo.cfg")
    # A mounted zoo.cfg and ZOO_MY_ID (the official image's habit): the id
    # goes into the dataDir that zoo.cfg names, when no myid is there yet.
    id=$(pick CORRAL_SERVER_ID ZOO_MY_ID)
    if [ -n "$id" ]; then
      integer "$(source_of CORRAL_SERVER_ID ZOO_MY_ID)" "$id" 1 255
      zk_data=$(sed -n 's/^[[:space:]]*dataDir[[:space:]]*=[[:space:]]*//p' "$CONF_DIR/zoo.cfg" | tail -1 | sed 's/[[:space:]]*$//')
      [ -n "$zk_data" ] || die "$CONF_DIR/zoo.cfg names no dataDir, so there is nowhere to write myid for $(source_of CORRAL_SERVER_ID ZOO_MY_ID)=$id"
      if [ -f "$zk_data/myid" ]; then
        have=$(tr -d '[:space:]' < "$zk_data/myid")
        [ "$have" = "$id" ] || die "$zk_data/myid says $have but $(source_of CORRAL_SERVER_ID ZOO_MY_ID)=$id; a server keeps its id: unset the variable or empty the data directory"
      else
        mkdir -p "$zk_data" 2>/dev/null && printf '%s\n' "$id" > "$zk_data/myid" 2>/dev/null ||
          die "cannot write $zk_data/myid (the dataDir of $CONF_DIR/zoo.cfg) as uid $(id -u): mount a volume there, or use /data"
        echo "corral-entrypoint: wrote $zk_data/myid = $id from $(source_of CORRAL_SERVER_ID ZOO_MY_ID) (the dataDir $CONF_DIR/zoo.cfg names)" >&2
      fi
    fi
  fi
  # The mounted file decides; the image only adds where its plugins are,
  # unless the file names plugin directories itself.
  if [ -n "$plugin_dirs" ] && ! grep -qE '^[[:space:]]*plugin_dir[[:space:]]*=' "$CONF_DIR/corral.toml" 2>/dev/null; then
    args+=(--set "server.plugin_dir=[$plugin_dirs]")
  fi
  if $print_only; then exec corrald "${args[@]}" --print-config; fi
  exec corrald "${args[@]}"
fi

# ---- from the environment ----

# ZOO_CFG_EXTRA: zoo.cfg lines, "key=value" separated by spaces. Its
# security keys are read with the TLS settings below; these others are
# mapped here, as if the line were in zoo.cfg after the image's own.
extra_client_port="" extra_words="" extra_standalone="" extra_admin_enabled="" extra_admin_port=""
extra_admin_host="" max_session="" min_session="" snap_every="" retain="" purge="" outstanding=""
reconfig="" fsync="" extended="" enforce="" max_frame="" wal_dir="" extra_tick="" extra_init="" extra_sync=""
extra_cnxns=""
for kv in ${ZOO_CFG_EXTRA-}; do
  case "$kv" in *=*) ;; *) die "ZOO_CFG_EXTRA: '$kv' is not key=value" ;; esac
  k=${kv%%=*} v=${kv#*=}
  case "$k" in
    clientPort) extra_client_port=$v ;;
    tickTime) extra_tick=$v ;;
    initLimit) extra_init=$v ;;
    syncLimit) extra_sync=$v ;;
    maxClientCnxns) extra_cnxns=$v ;;
    4lw.commands.whitelist) extra_words=$v ;;
    standaloneEnabled) extra_standalone=$v ;;
    admin.enableServer) extra_admin_enabled=$(boolean "ZOO_CFG_EXTRA $k" "$v") ;;
    admin.serverPort) integer "ZOO_CFG_EXTRA $k" "$v" 1 65535; extra_admin_port=$v ;;
    admin.serverAddress) extra_admin_host=$v ;;
    maxSessionTimeout) integer "ZOO_CFG_EXTRA $k" "$v" 0 2147483647; max_session=$v ;;
    minSessionTimeout) integer "ZOO_CFG_EXTRA $k" "$v" 0 2147483647; min_session=$v ;;
    snapCount|zookeeper.snapCount) integer "ZOO_CFG_EXTRA $k" "$v" 2 100000000; snap_every=$v ;;
    autopurge.snapRetainCount) integer "ZOO_CFG_EXTRA $k" "$v" 1 100000; retain=$v ;;
    autopurge.purgeInterval) integer "ZOO_CFG_EXTRA $k" "$v" 0 100000; purge=$v ;;
    globalOutstandingLimit|zookeeper.globalOutstandingLimit) integer "ZOO_CFG_EXTRA $k" "$v" 1 100000000; outstanding=$v ;;
    reconfigEnabled) reconfig=$(boolean "ZOO_CFG_EXTRA $k" "$v") ;;
    forceSync|zookeeper.forceSync) fsync=$(boolean "ZOO_CFG_EXTRA $k" "$v") ;;
    extendedTypesEnabled|zookeeper.extendedTypesEnabled) extended=$(boolean "ZOO_CFG_EXTRA $k" "$v") ;;
    enforceQuota|zookeeper.enforceQuota) enforce=$(boolean "ZOO_CFG_EXTRA $k" "$v") ;;
    jute.maxbuffer) integer "ZOO_CFG_EXTRA $k" "$v" 1024 2147483647; max_frame=$v ;;
    dataDir) DATA_DIR=$v ;;
    dataLogDir) wal_dir=$v ;;
    quorumListenOnAllIPs)
      b=$(boolean "ZOO_CFG_EXTRA $k" "$v")
      [ "$b" = true ] ||
        die "ZOO_CFG_EXTRA: quorumListenOnAllIPs=false: in a container the peer ports listen on the container's addresses; remove it" ;;
    metricsProvider.className)
      case "$v" in
        *PrometheusMetricsProvider) echo "corral-entrypoint: ZOO_CFG_EXTRA $k: Prometheus metrics are always at the admin endpoint's /metrics (port ${extra_admin_port:-8080})" >&2 ;;
        *) die "ZOO_CFG_EXTRA: $k=$v: this image serves Prometheus metrics only (at the admin endpoint's /metrics)" ;;
      esac ;;
    metricsProvider.httpPort|metricsProvider.httpHost|metricsProvider.exportJvmInfo)
      echo "corral-entrypoint: ZOO_CFG_EXTRA $k: Prometheus metrics are at the admin endpoint's /metrics, not on a port of their own" >&2 ;;
    secureClientPort|sslQuorum|admin.forceHttps|ssl.*|serverCnxnFactory) ;;  # TLS, below
    *[Ss]sl*|*[Aa]uth*|*[Ss]asl*|*[Ss]ecure*|*[Tt]ls*|*[Xx]509*|skipACL|zookeeper.skipACL)
      die "ZOO_CFG_EXTRA: $k is a security setting this image cannot honour; remove it" ;;
    *) die "ZOO_CFG_EXTRA: '$k' is not a zoo.cfg key this image knows (it reads the official image's, TLS's and: clientPort, tickTime, initLimit, syncLimit, maxClientCnxns, 4lw.commands.whitelist, standaloneEnabled, admin.*, min/maxSessionTimeout, snapCount, autopurge.*, globalOutstandingLimit, reconfigEnabled, forceSync, extendedTypesEnabled, enforceQuota, jute.maxbuffer, dataDir, dataLogDir, metricsProvider.*); remove it" ;;
  esac
done


id=$(pick CORRAL_SERVER_ID ZOO_MY_ID)
[ -z "$id" ] || integer "$(source_of CORRAL_SERVER_ID ZOO_MY_ID)" "$id" 1 255

# Servers: "1=host:2888:3888;2181 2=..." or ZooKeeper's "server.1=host:2888:3888;2181 server.2=...",
# separated by spaces, commas or newlines.
servers_raw_corral=$(echo "${CORRAL_SERVERS-}" | tr ',\n' '  ' | xargs -n1 2>/dev/null | sed 's/^server\.//' | xargs || true)
servers_raw_zoo=$(echo "${ZOO_SERVERS-}" | tr ',\n' '  ' | xargs -n1 2>/dev/null | sed 's/^server\.//' | xargs || true)
if [ -n "$servers_raw_corral" ] && [ -n "$servers_raw_zoo" ] && [ "$servers_raw_corral" != "$servers_raw_zoo" ]; then
  die "CORRAL_SERVERS and ZOO_SERVERS disagree; set one of them"
fi
servers_var=$(source_of CORRAL_SERVERS ZOO_SERVERS)
servers=()
for entry in ${servers_raw_corral:-$servers_raw_zoo}; do
  [[ $entry =~ ^[0-9]+=[^:=]+(:[0-9]+){2}(:(participant|observer))?(\;([^;]*:)?[0-9]+)?$ ]] ||
    die "$servers_var: '$entry' is not N=host:quorumPort:electionPort[:participant|observer][;clientPort]"
  servers+=("$entry")
done

discovery=${CORRAL_DISCOVERY-}
case "$discovery" in
  ""|static|dns|docker) ;;
  *) die "CORRAL_DISCOVERY must be static, dns or docker (found '$discovery')" ;;
esac

[ -z "$extra_standalone" ] || ZOO_STANDALONE_ENABLED=$extra_standalone
standalone_enabled=$(pick CORRAL_STANDALONE_ENABLED ZOO_STANDALONE_ENABLED)
standalone_enabled=$(boolean "$(source_of CORRAL_STANDALONE_ENABLED ZOO_STANDALONE_ENABLED)" "${standalone_enabled:-true}")

ensemble=false
if [ "$discovery" = docker ] || [ -n "${CORRAL_DNS_PATTERN-}" ]; then
  ensemble=true
  [ -n "$discovery" ] || discovery=dns
elif [ ${#servers[@]} -gt 1 ] || { [ ${#servers[@]} -eq 1 ] && [ "$standalone_enabled" = false ]; }; then
  ensemble=true
  # Names resolved again and again: peers that start later, or restart
  # elsewhere, are found (the default for an ensemble in a container).
  [ -n "$discovery" ] || discovery=dns
fi
if $ensemble && [ "$discovery" != docker ] && [ -z "$id" ] && [ "${CORRAL_ID_FROM_HOSTNAME:-false}" != true ]; then
  die "an ensemble member needs its own id: set ZOO_MY_ID or CORRAL_SERVER_ID (or CORRAL_ID_FROM_HOSTNAME=true for StatefulSet pods); there is no default every node would share"
fi
if $ensemble && [ -n "$id" ] && [ ${#servers[@]} -gt 0 ]; then
  printf '%s\n' "${servers[@]}" | grep -q "^$id=" ||
    die "$(source_of CORRAL_SERVER_ID ZOO_MY_ID)=$id has no entry in $servers_var (${servers[*]})"
fi

client_port=$(same CORRAL_CLIENT_PORT ZOO_PORT "${extra_client_port:-2181}")
integer "$(source_of CORRAL_CLIENT_PORT ZOO_PORT)" "$client_port" 1 65535
[ -z "$extra_tick" ] || ZOO_TICK_TIME=$extra_tick
[ -z "$extra_init" ] || ZOO_INIT_LIMIT=$extra_init
[ -z "$extra_sync" ] || ZOO_SYNC_LIMIT=$extra_sync
[ -z "$extra_cnxns" ] || ZOO_MAX_CLIENT_CNXNS=$extra_cnxns
[ -z "$extra_words" ] || ZOO_4LW_COMMANDS_WHITELIST=$extra_words
# The official image's autopurge: Corral removes what the newest
# ZOO_AUTOPURGE_SNAPRETAINCOUNT snapshots do not need each time it takes one,
# so any purge interval is met; 0 (ZooKeeper: never purge) still keeps that many.
retain=${retain:-${ZOO_AUTOPURGE_SNAPRETAINCOUNT-}}
[ -z "$retain" ] || integer "$( [ -n "${ZOO_AUTOPURGE_SNAPRETAINCOUNT-}" ] && echo ZOO_AUTOPURGE_SNAPRETAINCOUNT || echo "ZOO_CFG_EXTRA autopurge.snapRetainCount")" "$retain" 1 100000
[ -z "$retain" ] || [ "$retain" -ge 3 ] || retain=3  # ZooKeeper's minimum
purge=${purge:-${ZOO_AUTOPURGE_PURGEINTERVAL-}}
[ -z "${ZOO_AUTOPURGE_PURGEINTERVAL-}" ] || integer ZOO_AUTOPURGE_PURGEINTERVAL "$ZOO_AUTOPURGE_PURGEINTERVAL" 0 100000
if [ -n "$purge" ] && ! $print_only; then
  echo "corral-entrypoint: autopurge: old snapshots and logs go each time a snapshot is taken, keeping the newest ${retain:-3}" >&2
fi
wal_dir=$(same CORRAL_WAL_DIR ZOO_DATA_LOG_DIR "$wal_dir")
tick=$(pick CORRAL_TICK_MS ZOO_TICK_TIME); tick=${tick:-2000}
integer "$(source_of CORRAL_TICK_MS ZOO_TICK_TIME)" "$tick" 1 600000
init_limit=$(pick CORRAL_INIT_LIMIT ZOO_INIT_LIMIT); init_limit=${init_limit:-5}
integer "$(source_of CORRAL_INIT_LIMIT ZOO_INIT_LIMIT)" "$init_limit" 1 1000
sync_limit=$(pick CORRAL_SYNC_LIMIT ZOO_SYNC_LIMIT); sync_limit=${sync_limit:-2}
integer "$(source_of CORRAL_SYNC_LIMIT ZOO_SYNC_LIMIT)" "$sync_limit" 1 1000
max_cnxns=$(pick CORRAL_MAX_CLIENT_CNXNS ZOO_MAX_CLIENT_CNXNS); max_cnxns=${max_cnxns:-60}
integer "$(source_of CORRAL_MAX_CLIENT_CNXNS ZOO_MAX_CLIENT_CNXNS)" "$max_cnxns" 0 1000000
# The default is what the health check needs (srvr, else ruok) and isro.
words=$(pick CORRAL_FOUR_LETTER_WORDS ZOO_4LW_COMMANDS_WHITELIST); words=${words:-srvr,ruok,isro}
words_toml=""
IFS=', ' read -r -a word_list <<< "$words"
for w in "${word_list[@]}"; do
  [ -n "$w" ] || continue
  [[ $w =~ ^([a-z]{4}|\*)$ ]] || die "$(source_of CORRAL_FOUR_LETTER_WORDS ZOO_4LW_COMMANDS_WHITELIST): '$w' is not a four-letter word or *"
  words_toml="$words_toml${words_toml:+, }$(quote "$w")"
done
log_level=${CORRAL_LOG_LEVEL:-info}
case "$log_level" in trace|debug|info|warn|error) ;; *) die "CORRAL_LOG_LEVEL must be trace, debug, info, warn or error (found '$log_level')" ;; esac
storage=${CORRAL_STORAGE:-wal}
admin=${CORRAL_ADMIN_ADDRESS-${extra_admin_host:-0.0.0.0}:${extra_admin_port:-8080}}
admin_enabled=${extra_admin_enabled:-}
if [ -n "${ZOO_ADMINSERVER_ENABLED-}" ]; then
  admin_enabled=$(boolean ZOO_ADMINSERVER_ENABLED "$ZOO_ADMINSERVER_ENABLED")
fi
if [ "$admin_enabled" = false ]; then
  [ -z "${CORRAL_ADMIN_ADDRESS-}" ] || die "CORRAL_ADMIN_ADDRESS=$CORRAL_ADMIN_ADDRESS and ZOO_ADMINSERVER_ENABLED=false disagree; set one of them"
  admin=""
fi

# ---- TLS: CORRAL_TLS and the official image's ZOO_CFG_EXTRA ----
tls_client=false tls_peer=false tls_admin=false
for t in $(echo "${CORRAL_TLS-}" | tr ',' ' '); do
  case "$t" in
    client) tls_client=true ;;
    peer) tls_peer=true ;;
    admin) tls_admin=true ;;
    all) tls_client=true tls_peer=true tls_admin=true ;;
    *) die "CORRAL_TLS lists client, peer, admin or all (found '$t')" ;;
  esac
done
secure_port=${CORRAL_SECURE_CLIENT_PORT-}
tls_cert="" tls_password="" tls_ca="" tls_client_auth=${CORRAL_TLS_CLIENT_AUTH-}
peer_cert="" peer_password="" peer_ca=""
zoo_plaintext_client=false  # ZOO_CFG_EXTRA's secureClientPort keeps clientPort open, as ZooKeeper does
for kv in ${ZOO_CFG_EXTRA-}; do
  k=${kv%%=*} v=${kv#*=}
  case "$k" in
    secureClientPort) tls_client=true; zoo_plaintext_client=true; secure_port=$v ;;
    sslQuorum) b=$(boolean "ZOO_CFG_EXTRA $k" "$v"); [ "$b" = false ] || tls_peer=true ;;
    admin.forceHttps) b=$(boolean "ZOO_CFG_EXTRA $k" "$v"); [ "$b" = false ] || tls_admin=true ;;
    ssl.keyStore.location) tls_cert=$v ;;
    ssl.keyStore.password) tls_password=$v ;;
    ssl.trustStore.location) tls_ca=$v ;;
    ssl.clientAuth) tls_client_auth=$(echo "$v" | tr 'A-Z' 'a-z') ;;
    ssl.quorum.keyStore.location) peer_cert=$v ;;
    ssl.quorum.keyStore.password) peer_password=$v ;;
    ssl.quorum.trustStore.location) peer_ca=$v ;;
    ssl.keyStore.type|ssl.trustStore.type|ssl.quorum.keyStore.type|ssl.quorum.trustStore.type)
      case "$(echo "$v" | tr 'a-z' 'A-Z')" in
        PEM|PKCS12) ;;
        *) die "ZOO_CFG_EXTRA: $k=$v: this image reads PEM and PKCS12 stores; convert a JKS one with keytool -importkeystore -deststoretype PKCS12" ;;
      esac ;;
    serverCnxnFactory|ssl.trustStore.password|ssl.quorum.trustStore.password) ;;
    ssl.*) die "ZOO_CFG_EXTRA: $k is a security setting this image cannot honour; remove it" ;;
    *) ;;  # mapped above
  esac
done
secure_port=${secure_port:-2281}
integer "CORRAL_SECURE_CLIENT_PORT" "$secure_port" 1 65535
case "$tls_client_auth" in ""|none|want|need) ;; *) die "CORRAL_TLS_CLIENT_AUTH must be none, want or need (found '$tls_client_auth')" ;; esac
tls_dir=${CORRAL_TLS_DIR:-/certs}
if $tls_client || $tls_peer || $tls_admin; then
  if [ -z "$tls_cert" ]; then
    if [ -n "$id" ] && [ -f "$tls_dir/server.$id.pem" ]; then tls_cert=$tls_dir/server.$id.pem
    elif [ -f "$tls_dir/server.pem" ]; then tls_cert=$tls_dir/server.pem
    else die "CORRAL_TLS needs this server's certificate and key: mount them at $tls_dir as server.${id:-<id>}.pem or server.pem (containers/make-certs.sh makes a set)"
    fi
  fi
  [ -n "$tls_ca" ] || [ ! -f "$tls_dir/ca.pem" ] || tls_ca=$tls_dir/ca.pem
  tls_crl=${CORRAL_TLS_CRL-}
  [ -n "$tls_crl" ] || [ ! -f "$tls_dir/crl.pem" ] || tls_crl=$tls_dir/crl.pem
  if [ -n "$tls_crl" ] && [ -z "$tls_ca" ]; then
    die "CORRAL_TLS_CRL: a revocation list ($tls_crl) is checked against the authority that signs it: mount it as $tls_dir/ca.pem"
  fi
  if $tls_peer && [ -z "$tls_ca" ] && [ -z "$peer_ca" ]; then
    die "CORRAL_TLS=peer needs the authority that signs the members' certificates: $tls_dir/ca.pem"
  fi
fi

# How members prove they belong: a secret file every member holds (a Docker
# or Kubernetes secret), else ports as open as the official image's, said aloud.
peer_secret=${CORRAL_PEER_SECRET_FILE-}
[ -n "$peer_secret" ] || [ ! -f /run/secrets/corral_peer_secret ] || peer_secret=/run/secrets/corral_peer_secret
peer_auth=${CORRAL_PEER_AUTH:-}
case "$peer_auth" in ""|required|optional|none) ;; *) die "CORRAL_PEER_AUTH must be required, optional or none (found '$peer_auth')" ;; esac
if [ -n "$peer_secret" ]; then
  $print_only || [ -r "$peer_secret" ] || die "CORRAL_PEER_SECRET_FILE: $peer_secret cannot be read"
  peer_auth=${peer_auth:-required}
elif $tls_peer; then
  peer_auth=${peer_auth:-required}  # certificates prove who each member is
elif [ -z "$peer_auth" ]; then
  peer_auth=none
elif [ "$peer_auth" != none ]; then
  die "CORRAL_PEER_AUTH=$peer_auth needs CORRAL_PEER_SECRET_FILE (or a secret named corral_peer_secret) or CORRAL_TLS=peer"
fi

# The plugins this image carries (its bundle plus what /plugins adds).
list_args=()
[ -z "$plugin_dirs" ] || list_args=(--set "server.plugin_dir=[$plugin_dirs]")
available=$(corrald "${list_args[@]}" --list-plugins 2>/dev/null | awk '$1 != "?" {print $1 "/" $2}')
need() {  # need VAR KIND NAME
  echo "$available" | grep -qx "$2/$3" && return 0
  die "$1: this image has no $2 plugin '$3' (bundle ${CORRAL_BUNDLE:-?}; it has: $(echo "$available" | grep "^$2/" | cut -d/ -f2 | xargs | sed 's/ /, /g'))"
}
need CORRAL_STORAGE storage "$storage"
if $ensemble; then
  need "$(source_of CORRAL_SERVERS ZOO_SERVERS)" consensus zab
  need CORRAL_ELECTION election "${CORRAL_ELECTION:-fle}"
  [ -z "$discovery" ] || need CORRAL_DISCOVERY discovery "$discovery"
fi
for r in $(echo "${CORRAL_RECIPES-}" | tr ',' ' '); do need CORRAL_RECIPES recipe "$r"; done

{
  echo "# Made by corral-entrypoint from the container's environment."
  echo "[server]"
  [ -z "$id" ] || echo "id = $id"
  echo "data_dir = $(quote "$DATA_DIR")"
  if $tls_client && ! $zoo_plaintext_client; then
    # Plaintext for the health check and tools inside the container only.
    echo "client_address = $(quote "127.0.0.1:$client_port")"
  else
    echo "client_address = $(quote "0.0.0.0:$client_port")"
  fi
  ! $tls_client || echo "secure_client_address = $(quote "0.0.0.0:$secure_port")"
  ! $tls_admin || echo "admin_tls = true"
  # The official image's ZOO_LOG_DIR: corrald writes its log there as well
  # as to stderr (itself, so the last lines before it exits are kept).
  [ -z "${ZOO_LOG_DIR-}" ] || echo "log_file = $(quote "$ZOO_LOG_DIR/corral.log")"
  echo "tick_ms = $tick"
  echo "max_client_cnxns = $max_cnxns"
  echo "four_letter_words = [$words_toml]"
  echo "log_level = $(quote "$log_level")"
  echo "admin_address = $(quote "$admin")"
  if [ -n "${CORRAL_ADMIN_HOSTS-}" ]; then
    hosts_toml=""
    for h in $(echo "$CORRAL_ADMIN_HOSTS" | tr ',' ' '); do hosts_toml="$hosts_toml${hosts_toml:+, }$(quote "$h")"; done
    echo "admin_hosts = [$hosts_toml]"
  fi
  [ -z "$plugin_dirs" ] || echo "plugin_dir = [$plugin_dirs]"
  [ -z "${CORRAL_SUPER_DIGEST-}" ] || echo "super_digest = $(quote "$CORRAL_SUPER_DIGEST")"
  [ -z "$max_session" ] || echo "max_session_timeout_ms = $max_session"
  [ -z "$min_session" ] || echo "min_session_timeout_ms = $min_session"
  [ -z "$outstanding" ] || echo "max_outstanding = $outstanding"
  [ -z "$extended" ] || echo "extended_types = $extended"
  [ -z "$enforce" ] || echo "enforce_quota = $enforce"
  [ -z "$max_frame" ] || echo "max_frame_bytes = $max_frame"
  echo "[plugins]"
  echo "storage = $(quote "$storage")"
  if $ensemble; then
    echo "consensus = \"zab\""
    echo "election = $(quote "${CORRAL_ELECTION:-fle}")"
    [ -z "$discovery" ] || echo "discovery = $(quote "$discovery")"
  fi
  if [ -n "${CORRAL_RECIPES-}" ]; then
    list=""
    for r in $(echo "$CORRAL_RECIPES" | tr ',' ' '); do list="$list${list:+, }$(quote "$r")"; done
    echo "recipes = [$list]"
  fi
  if $ensemble; then
    echo "[ensemble]"
    # Peers connect to whatever address this container has.
    echo "listen_on_all_addresses = true"
    echo "peer_auth = $(quote "$peer_auth")"
    ! $tls_peer || echo "tls = true"
    [ -z "$peer_secret" ] || echo "secret_file = $(quote "$peer_secret")"
    if [ "$peer_auth" = none ] && ! $print_only; then
      echo "corral-entrypoint: no peer secret (CORRAL_PEER_SECRET_FILE, or a secret named corral_peer_secret): the peer ports believe anyone who reaches them, as the official ZooKeeper image's do" >&2
    fi
    if [ ${#servers[@]} -gt 0 ]; then
      list=""
      for s in "${servers[@]}"; do list="$list${list:+, }$(quote "$s")"; done
      echo "servers = [$list]"
    fi
    [ -z "$reconfig" ] || echo "reconfig_enabled = $reconfig"
    echo "[consensus.zab]"
    echo "init_limit = $init_limit"
    echo "sync_limit = $sync_limit"
  fi
  if $tls_client || $tls_peer || $tls_admin; then
    echo "[transport.tls]"
    echo "certificate = $(quote "$tls_cert")"
    [ -z "$tls_password" ] || echo "password = $(quote "$tls_password")"
    [ -z "$tls_ca" ] || echo "ca = $(quote "$tls_ca")"
    [ -z "$tls_client_auth" ] || echo "client_auth = $(quote "$tls_client_auth")"
    [ -z "${tls_crl-}" ] || echo "crl = $(quote "$tls_crl")"
    if [ -n "$peer_cert$peer_ca" ]; then
      echo "[transport.tls.peer]"
      [ -z "$peer_cert" ] || echo "certificate = $(quote "$peer_cert")"
      [ -z "$peer_password" ] || echo "password = $(quote "$peer_password")"
      [ -z "$peer_ca" ] || echo "ca = $(quote "$peer_ca")"
      # The list comes from the clients' authority; peers trust another.
      if [ -n "${tls_crl-}" ] && [ -n "$peer_ca" ] && [ "$peer_ca" != "$tls_ca" ]; then
        echo 'crl = ""'
        echo "corral-entrypoint: the revocation list $tls_crl is checked on client and admin connections only: the members trust another authority ($peer_ca)" >&2
      fi
    fi
  fi
  if [ -n "${CORRAL_SNAPSHOT_EVERY-}" ]; then
    integer CORRAL_SNAPSHOT_EVERY "$CORRAL_SNAPSHOT_EVERY" 1 100000000
    snap_every=$CORRAL_SNAPSHOT_EVERY
  fi
  if [ "$storage" = wal ] && [ -n "$snap_every$retain$fsync$wal_dir" ]; then
    echo "[storage.wal]"
    [ -z "$snap_every" ] || echo "snapshot_every_entries = $snap_every"
    [ -z "$retain" ] || echo "retain_snapshots = $retain"
    [ -z "$fsync" ] || echo "fsync = $fsync"
    # ZooKeeper's dataLogDir: the log on a disk of its own; snapshots stay
    # under the data directory, as ZooKeeper keeps them in dataDir.
    [ -z "$wal_dir" ] || { echo "dir = $(quote "$wal_dir")"; echo 'snapshot_dir = "wal"'; }
  fi
  if [ "$discovery" = dns ]; then
    echo "[discovery.dns]"
    [ -z "${CORRAL_DNS_INTERVAL_MS-}" ] || { integer CORRAL_DNS_INTERVAL_MS "$CORRAL_DNS_INTERVAL_MS" 100 600000; echo "interval_ms = $CORRAL_DNS_INTERVAL_MS"; }
    if [ -n "${CORRAL_DNS_PATTERN-}" ]; then
      [ -n "${CORRAL_DNS_REPLICAS-}" ] || die "CORRAL_DNS_PATTERN needs CORRAL_DNS_REPLICAS (the ensemble's size)"
      integer CORRAL_DNS_REPLICAS "$CORRAL_DNS_REPLICAS" 1 255
      echo "pattern = $(quote "$CORRAL_DNS_PATTERN")"
      echo "replicas = $CORRAL_DNS_REPLICAS"
    fi
    from_hostname=$(boolean CORRAL_ID_FROM_HOSTNAME "${CORRAL_ID_FROM_HOSTNAME:-false}")
    if [ "$from_hostname" = true ]; then
      echo "id_from_hostname = true"
      integer CORRAL_ORDINAL_BASE "${CORRAL_ORDINAL_BASE:-0}" 0 1000
      echo "ordinal_base = ${CORRAL_ORDINAL_BASE:-0}"
    fi
  fi
  if [ "$discovery" = docker ] && [[ ",${CORRAL_RECIPES-}," == *,service-registry,* ]]; then
    # Registrator-style: running containers labelled corral.service are
    # registered while they run.
    echo "[recipe.service-registry]"
    echo "docker_socket = $(quote "${CORRAL_DOCKER_SOCKET:-/var/run/docker.sock}")"
  fi
  if [ "$discovery" = docker ]; then
    echo "[discovery.docker]"
    echo "socket = $(quote "${CORRAL_DOCKER_SOCKET:-/var/run/docker.sock}")"
    [ -z "${CORRAL_DOCKER_ENSEMBLE-}" ] || echo "ensemble = $(quote "$CORRAL_DOCKER_ENSEMBLE")"
    if [ -n "${CORRAL_ENSEMBLE_SIZE-}" ]; then
      integer CORRAL_ENSEMBLE_SIZE "$CORRAL_ENSEMBLE_SIZE" 1 255
      echo "expect = $CORRAL_ENSEMBLE_SIZE"
    fi
  fi
} > "${TMPDIR:-/tmp}/corral.toml"

if ! check=$(corrald --config "${TMPDIR:-/tmp}/corral.toml" --print-config 2>&1 >/dev/null); then
  echo "corral-entrypoint: the environment makes a configuration corrald refuses:" >&2
  echo "$check" >&2
  exit 2
fi
if $print_only; then exec cat "${TMPDIR:-/tmp}/corral.toml"; fi
if [ -n "${ZOO_LOG_DIR-}" ]; then
  mkdir -p "$ZOO_LOG_DIR" 2>/dev/null && touch "$ZOO_LOG_DIR/corral.log" 2>/dev/null ||
    die "ZOO_LOG_DIR: cannot write $ZOO_LOG_DIR/corral.log as uid $(id -u)"
fi
# ZooKeeper's image writes myid; so do we, for tools that look for it.
[ -z "$id" ] || { [ -w "$DATA_DIR" ] && echo "$id" > "$DATA_DIR/myid"; } || true
exec corrald --config "${TMPDIR:-/tmp}/corral.toml"
