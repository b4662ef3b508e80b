"""The container entrypoint (containers/entrypoint.sh), run here against the
built corrald: configuration from CORRAL_* and the official ZooKeeper
image's ZOO_* variables, a mounted file winning over the environment, and
every wrong setting stopping the start with a message naming the variable."""
import os
import pathlib
import signal
import subprocess
import time

import pytest

from corral_harness.servers import REPO, TARGET, four_letter, free_port

pytestmark = pytest.mark.skipif(TARGET != "corrald", reason="Corral's container entrypoint")

ENTRYPOINT = REPO / "containers" / "entrypoint.sh"
CORRALD = pathlib.Path(os.environ.get("CORRALD", str(REPO / "build" / "kernel" / "corrald")))
ZOO_SERVERS = "server.1=zoo1:2888:3888;2181 server.2=zoo2:2888:3888;2181 server.3=zoo3:2888:3888;2181"


@pytest.fixture
def dirs(tmp_path):
    (tmp_path / "conf").mkdir()
    (tmp_path / "data").mkdir()
    return tmp_path


def env_for(dirs, **variables):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CORRAL_", "ZOO_"))}
    env["PATH"] = f"{CORRALD.parent}:{env['PATH']}"
    env.update(CORRAL_CONF_DIR=str(dirs / "conf"), CORRAL_DATA_DIR=str(dirs / "data"),
               CORRAL_USER_PLUGIN_DIR=str(dirs / "no-plugins"))
    env.update({k: str(v) for k, v in variables.items() if v is not None})
    for k in [k for k, v in variables.items() if v is None]:  # None: unset
        env.pop(k, None)
    return env


def entry(dirs, *args, **variables):
    return subprocess.run(["bash", str(ENTRYPOINT), *args], env=env_for(dirs, **variables),
                          capture_output=True, text=True, timeout=30)


def test_the_official_images_variables_make_an_ensemble_member(dirs):
    r = entry(dirs, "--print-config", ZOO_MY_ID=2, ZOO_SERVERS=ZOO_SERVERS, ZOO_TICK_TIME=500, ZOO_INIT_LIMIT=7,
              ZOO_SYNC_LIMIT=3, ZOO_MAX_CLIENT_CNXNS=0, ZOO_4LW_COMMANDS_WHITELIST="srvr, ruok,mntr",
              ZOO_STANDALONE_ENABLED="true")
    assert r.returncode == 0, r.stderr
    c = r.stdout
    for line in ["id = 2", "tick_ms = 500", "max_client_cnxns = 0", 'four_letter_words = ["srvr", "ruok", "mntr"]',
                 'consensus = "zab"', 'discovery = "dns"', "init_limit = 7", "sync_limit = 3",
                 'servers = ["1=zoo1:2888:3888;2181", "2=zoo2:2888:3888;2181", "3=zoo3:2888:3888;2181"]',
                 "listen_on_all_addresses = true", 'client_address = "0.0.0.0:2181"']:
        assert line in c, (line, c)


def test_the_official_images_whole_surface_and_defaults(dirs):
    conf, data, logdir, logs = dirs / "zconf", dirs / "zdata", dirs / "zlog", dirs / "zlogs"
    conf.mkdir()
    r = entry(dirs, "--print-config", CORRAL_CONF_DIR=None, CORRAL_DATA_DIR=None,
              ZOO_MY_ID=1, ZOO_SERVERS=ZOO_SERVERS, ZOO_CONF_DIR=conf, ZOO_DATA_DIR=data,
              ZOO_DATA_LOG_DIR=logdir, ZOO_AUTOPURGE_PURGEINTERVAL=24, ZOO_AUTOPURGE_SNAPRETAINCOUNT=5,
              ZOO_ADMINSERVER_ENABLED="false", ZOO_LOG_DIR=logs, JVMFLAGS="-Xmx1g",
              ZOO_CFG_EXTRA="maxSessionTimeout=60000 snapCount=50000 reconfigEnabled=true forceSync=no "
                            "metricsProvider.className=org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider "
                            "metricsProvider.httpPort=7000 4lw.commands.whitelist=srvr,mntr,ruok")
    assert r.returncode == 0, r.stderr
    c = r.stdout
    for line in [f'data_dir = "{data}"', f'dir = "{logdir}"', 'snapshot_dir = "wal"', "retain_snapshots = 5",
                 f'log_file = "{logs}/corral.log"',
                 'admin_address = ""',
                 "max_session_timeout_ms = 60000", "snapshot_every_entries = 50000", "reconfig_enabled = true",
                 "fsync = false", 'four_letter_words = ["srvr", "mntr", "ruok"]',
                 # The official image's defaults.
                 "init_limit = 5", "sync_limit = 2", "tick_ms = 2000", "max_client_cnxns = 60"]:
        assert line in c, (line, c)
    assert "JVMFLAGS is for ZooKeeper's JVM" in r.stderr
    assert "/metrics" in r.stderr
    # ZOO_CONF_DIR is where a mounted zoo.cfg is looked for.
    (conf / "zoo.cfg").write_text(f"clientPort={free_port()}\ndataDir={data}\ntickTime=900\n")
    r = entry(dirs, "--print-config", CORRAL_CONF_DIR=None, ZOO_CONF_DIR=conf)
    assert r.returncode == 0 and "tick_ms = 900" in r.stdout, r.stderr
    # The 3.4 image's ZOO_PORT is the client port.
    r = entry(dirs, "--print-config", ZOO_PORT=2191)
    assert r.returncode == 0 and 'client_address = "0.0.0.0:2191"' in r.stdout, r.stderr


def test_kubernetes_service_links_are_not_taken_for_settings(dirs):
    r = entry(dirs, "--print-config", CORRAL_SERVICE_HOST="10.0.0.9", CORRAL_SERVICE_PORT=2181,
              CORRAL_SERVICE_PORT_CLIENT=2181, CORRAL_PORT="tcp://10.0.0.9:2181",
              CORRAL_PORT_2181_TCP="tcp://10.0.0.9:2181", CORRAL_PORT_2181_TCP_ADDR="10.0.0.9",
              CORRAL_HS_SERVICE_HOST="10.0.0.8")
    assert r.returncode == 0, r.stderr
    # ...while a mistyped setting still stops the start.
    r = entry(dirs, "--print-config", CORRAL_CLIENTPORT=2181)
    assert r.returncode == 2 and "unknown variable CORRAL_CLIENTPORT" in r.stderr


def test_corral_variables_and_no_variables(dirs):
    r = entry(dirs, "--print-config", CORRAL_DISCOVERY="docker", CORRAL_ENSEMBLE_SIZE=3, CORRAL_DOCKER_ENSEMBLE="e1")
    assert r.returncode == 0, r.stderr
    assert 'discovery = "docker"' in r.stdout and "expect = 3" in r.stdout and 'ensemble = "e1"' in r.stdout
    assert "id =" not in r.stdout  # from the container's label
    alone = entry(dirs, "--print-config")
    assert alone.returncode == 0, alone.stderr
    assert "zab" not in alone.stdout and "id =" not in alone.stdout
    k8s = entry(dirs, "--print-config", CORRAL_DNS_PATTERN="corral-{ordinal}.corral:2888:3888;2181",
                CORRAL_DNS_REPLICAS=3, CORRAL_ID_FROM_HOSTNAME="true")
    assert k8s.returncode == 0, k8s.stderr
    assert "id_from_hostname = true" in k8s.stdout and "replicas = 3" in k8s.stdout


@pytest.mark.parametrize("variables,says", [
    ({"CORRAL_SERVER_ID": 3, "ZOO_MY_ID": 2}, "CORRAL_SERVER_ID=3 and ZOO_MY_ID=2 disagree"),
    ({"CORRAL_TICKMS": 100}, "unknown variable CORRAL_TICKMS"),
    ({"ZOO_TICK_TIME": "fast"}, "ZOO_TICK_TIME must be an integer"),
    ({"ZOO_MY_ID": 0}, "ZOO_MY_ID must be an integer from 1 to 255"),
    ({"ZOO_MY_ID": 1, "ZOO_SERVERS": "server.1=zoo1:2888 server.2=zoo2:2888:3888"}, "ZOO_SERVERS: '1=zoo1:2888'"),
    ({"ZOO_SERVERS": ZOO_SERVERS}, "needs its own id: set ZOO_MY_ID or CORRAL_SERVER_ID"),
    ({"ZOO_MY_ID": 4, "ZOO_SERVERS": ZOO_SERVERS}, "ZOO_MY_ID=4 has no entry in ZOO_SERVERS"),
    ({"CORRAL_DISCOVERY": "consul"}, "CORRAL_DISCOVERY must be static, dns or docker"),
    ({"ZOO_4LW_COMMANDS_WHITELIST": "srvr,stats"}, "ZOO_4LW_COMMANDS_WHITELIST: 'stats'"),
    ({"ZOO_STANDALONE_ENABLED": "maybe"}, "ZOO_STANDALONE_ENABLED must be true or false"),
    ({"ZOO_USER": "zookeeper"}, "ZOO_USER: this image runs corrald as its own user"),
    ({"ZOO_HEAP": "1g"}, "unknown variable ZOO_HEAP"),
    ({"ZOO_CFG_EXTRA": "electionAlg=1"}, "ZOO_CFG_EXTRA: 'electionAlg' is not a zoo.cfg key this image knows"),
    ({"ZOO_CFG_EXTRA": "skipACL=yes"}, "ZOO_CFG_EXTRA: skipACL is a security setting"),
    ({"ZOO_CFG_EXTRA": "snapCount"}, "ZOO_CFG_EXTRA: 'snapCount' is not key=value"),
    ({"ZOO_CFG_EXTRA": "sslQuorum=maybe"}, "ZOO_CFG_EXTRA sslQuorum must be true or false"),
    ({"ZOO_AUTOPURGE_SNAPRETAINCOUNT": "many"}, "ZOO_AUTOPURGE_SNAPRETAINCOUNT must be an integer"),
    ({"ZOO_ADMINSERVER_ENABLED": "false", "CORRAL_ADMIN_ADDRESS": "0.0.0.0:9090"}, "disagree"),
    ({"ZOO_CONF_DIR": "/a", "CORRAL_CONF_DIR": "/b"}, "CORRAL_CONF_DIR=/b and ZOO_CONF_DIR=/a disagree"),
    ({"CORRAL_STORAGE": "etcd"}, "CORRAL_STORAGE: this image has no storage plugin 'etcd'"),
])
def test_wrong_settings_stop_the_start_naming_the_variable(dirs, variables, says):
    r = entry(dirs, **variables)
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert says in r.stderr, r.stderr


def test_a_mounted_config_wins_over_the_environment(dirs):
    port = free_port()
    (dirs / "conf" / "corral.toml").write_text(f'[server]\nclient_address = "127.0.0.1:{port}"\n'
                                               f'data_dir = "{dirs / "data"}"\n')
    r = entry(dirs, "--print-config", ZOO_MY_ID=2, CORRAL_TICK_MS=300)
    assert r.returncode == 0, r.stderr
    assert f"127.0.0.1:{port}" in r.stdout and "tick_ms = 2000" in r.stdout
    assert "variables are ignored" in r.stderr
    (dirs / "conf" / "corral.toml").unlink()
    (dirs / "conf" / "zoo.cfg").write_text(f"clientPort={port}\ndataDir={dirs / 'data'}\ntickTime=700\n")
    r = entry(dirs, "--print-config")
    assert r.returncode == 0, r.stderr
    assert "tick_ms = 700" in r.stdout


def test_a_mounted_zoo_cfg_with_zoo_my_id_gets_its_myid_in_the_data_dir_it_names(dirs):
    # The official image's habit: zoo.cfg mounted, the id in ZOO_MY_ID.
    zk_data = dirs / "var-lib-zookeeper"
    (dirs / "conf" / "zoo.cfg").write_text(
        f"tickTime=2000\ninitLimit=5\nsyncLimit=2\ndataDir={zk_data}\nclientPort=2181\n"
        "server.1=zookeeper1:2888:3888\nserver.2=zookeeper2:2888:3888\nserver.3=zookeeper3:2888:3888\n")
    r = entry(dirs, "--print-config", ZOO_MY_ID=2)
    assert r.returncode == 0, r.stderr
    assert (zk_data / "myid").read_text() == "2\n"
    assert f"wrote {zk_data}/myid = 2 from ZOO_MY_ID" in r.stderr
    assert "id = 2" in r.stdout
    # Again: it is there and agrees, nothing to say.
    r = entry(dirs, "--print-config", ZOO_MY_ID=2)
    assert r.returncode == 0 and "wrote" not in r.stderr, r.stderr
    # A different id for the same data: refused, the file kept.
    r = entry(dirs, "--print-config", ZOO_MY_ID=3)
    assert r.returncode == 2 and f"{zk_data}/myid says 2 but ZOO_MY_ID=3" in r.stderr, r.stderr
    assert (zk_data / "myid").read_text() == "2\n"
    # Nowhere to write it: said so.
    (dirs / "conf" / "zoo.cfg").write_text("clientPort=2181\ndataDir=/proc/no-such-place\n")
    r = entry(dirs, "--print-config", ZOO_MY_ID=1)
    assert r.returncode == 2 and "cannot write /proc/no-such-place/myid" in r.stderr, r.stderr


def test_it_serves_and_stops_at_once_on_sigterm(dirs):
    port = free_port()
    proc = subprocess.Popen(["bash", str(ENTRYPOINT)], env=env_for(dirs, CORRAL_CLIENT_PORT=port,
                                                                    CORRAL_ADMIN_ADDRESS=""),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                if four_letter("127.0.0.1", port, "ruok", timeout=1) == "imok":
                    break
            except OSError:
                time.sleep(0.1)
        else:
            raise AssertionError("no server came up")
        assert (dirs / "data").exists()
        started = time.time()
        proc.send_signal(signal.SIGTERM)  # corrald itself: the entrypoint exec'd it
        assert proc.wait(timeout=5) == 0
        assert time.time() - started < 3.0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


def test_tls_from_corral_variables_and_a_certificate_directory(dirs):
    certs = dirs / "certs"
    subprocess.run([str(REPO / "containers" / "make-certs.sh"), str(certs)], check=True, capture_output=True)
    r = entry(dirs, "--print-config", ZOO_MY_ID=2, ZOO_SERVERS=ZOO_SERVERS, CORRAL_TLS="client,peer,admin",
              CORRAL_TLS_DIR=certs)
    assert r.returncode == 0, r.stderr
    c = r.stdout
    for line in ['client_address = "127.0.0.1:2181"', 'secure_client_address = "0.0.0.0:2281"', "admin_tls = true",
                 "tls = true", 'peer_auth = "required"', f'certificate = "{certs}/server.2.pem"',
                 f'ca = "{certs}/ca.pem"']:
        assert line in c, (line, c)
    assert "believe anyone" not in r.stderr
    assert "crl =" not in c
    # A revocation list beside the certificates is checked.
    (certs / "crl.pem").write_text("-----BEGIN X509 CRL-----\n-----END X509 CRL-----\n")
    r = entry(dirs, "--print-config", ZOO_MY_ID=2, ZOO_SERVERS=ZOO_SERVERS, CORRAL_TLS="client,peer,admin",
              CORRAL_TLS_DIR=certs)
    assert r.returncode == 0 and f'crl = "{certs}/crl.pem"' in r.stdout, r.stderr


def test_tls_from_the_official_images_zoo_cfg_extra(dirs):
    certs = dirs / "certs"
    subprocess.run([str(REPO / "containers" / "make-certs.sh"), str(certs)], check=True, capture_output=True)
    extra = (f"secureClientPort=3281 serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory "
             f"ssl.keyStore.location={certs}/server.1.pem ssl.keyStore.type=PEM "
             f"ssl.trustStore.location={certs}/ca.pem ssl.clientAuth=need sslQuorum=true")
    r = entry(dirs, "--print-config", ZOO_MY_ID=1, ZOO_SERVERS=ZOO_SERVERS, ZOO_CFG_EXTRA=extra)
    assert r.returncode == 0, r.stderr
    for line in ['client_address = "0.0.0.0:2181"', 'secure_client_address = "0.0.0.0:3281"',
                 'client_auth = "need"', "tls = true", f'certificate = "{certs}/server.1.pem"']:
        assert line in r.stdout, (line, r.stdout)
    for bad, says in [("ssl.keyStore.type=JKS", "convert a JKS"), ("ssl.ocsp=true", "cannot honour"),
                      ("secureClientPort=2281", "needs this server's certificate")]:
        r = entry(dirs, "--print-config", ZOO_MY_ID=1, ZOO_SERVERS=ZOO_SERVERS, ZOO_CFG_EXTRA=bad,
                  CORRAL_TLS_DIR=dirs / "nothing")
        assert r.returncode == 2 and says in r.stderr, (bad, r.stderr)
