"""Shared pieces of the end-to-end scripts: a private PostgreSQL cluster that can be crashed and
restarted, approvald processes that can be killed and restarted on their port, tokens, psql,
the Python stubs of the API, the config of the refund.provider tests, and a base class for test
classes on the PostgreSQL of tests/run.

    sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
    import harness
    pg = harness.Postgres(tmp)          # initdb + start on a free port (unix socket in tmp)
    dsn = pg.create_database("mine")
    harness.psql("CREATE TABLE t (x int)", dsn)
    daemon = harness.Approvald(APPROVALD, dsn, tokens_file, config_file, tmp)
    daemon.kill9(); daemon.start()      # same port
    pg.crash_restart()                  # pg_ctl -m immediate stop, then start

    class MyTest(harness.DatabaseTestCase):   # on the PostgreSQL of tests/run
        @classmethod
        def setUpClass(cls):
            cls.set_up_database("mine", APPROVALCTL, {"agent": "requester"}, stubs_root=ROOT)
    harness.run_tests()

Everything listens on 127.0.0.1 only. tests/ha and tests/perf use the process helpers too.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import uuid

PG_BIN = "/usr/lib/postgresql/15/bin"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(condition, timeout, what, interval=0.05):
    """Polls condition() until it returns something true (returned) or timeout seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError("timed out after %ss waiting for %s" % (timeout, what))
        time.sleep(interval)


def read_in_background(stream):
    """Reads a gRPC response stream on a daemon thread: returns (items, thread); items gets
    each message, then the grpc.StatusCode the stream ended with, if it ended with an error."""
    import grpc
    items = []

    def read():
        try:
            for item in stream:
                items.append(item)
        except grpc.RpcError as err:
            items.append(err.code())
    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return items, thread


def logged_port(log_path):
    """The port of approvald's "listening on ... (port N)" log line; None before that line."""
    with open(log_path, errors="replace") as f:
        m = re.search(r"\(port (\d+)\)", f.read())
    return int(m.group(1)) if m else None


def wait_listening(proc, log_path, timeout=30):
    """The port approvald (proc, logging to log_path) listens on, once it says so; None if it
    exited or timeout seconds passed first."""
    deadline = time.monotonic() + timeout
    while proc.poll() is None:
        port = logged_port(log_path)
        if port is not None:
            return port
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.05)
    return None


def terminate(proc, grace=20, check=False):
    """SIGTERM, then kill -9 if proc has not exited after grace seconds. check: raise if it had
    to be killed (after killing it, so that nothing is left running)."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
        if check:
            raise RuntimeError("pid %d did not exit within %ss of SIGTERM" % (proc.pid, grace))


def as_pg_owner(cmd):
    """initdb and postgres refuse to run as root: run them as the `postgres` OS user then."""
    return ["runuser", "-u", "postgres", "--", *cmd] if os.getuid() == 0 else list(cmd)


def _chown_to_pg_owner(path):
    if os.getuid() == 0:
        shutil.chown(path, "postgres", "postgres")


def psql(sql, dsn, timeout=60):
    """Runs sql (ON_ERROR_STOP); returns the rows of its output as lists of strings."""
    out = subprocess.run(["psql", dsn, "-v", "ON_ERROR_STOP=1", "-XAtq", "-F", "\t", "-c", sql],
                         check=True, capture_output=True, text=True, timeout=timeout).stdout
    return [line.split("\t") for line in out.splitlines()]


class Postgres:
    """A throwaway cluster in tmp/pg: trust auth, TCP on 127.0.0.1 and a unix socket in
    tmp/pg-sock. The constructor runs initdb and starts it; stop() before removing tmp.
    fsync off is safe for crash restarts (the OS keeps what was written); synchronous_commit
    must stay on: without it an immediate stop loses transactions that were answered as
    committed."""

    def __init__(self, tmp, settings=("fsync=off", "full_page_writes=off",
                                      "max_connections=300")):
        os.chmod(tmp, 0o755)  # the postgres user must reach its folders
        self.data = os.path.join(tmp, "pg")
        self.sock = os.path.join(tmp, "pg-sock")
        self.log_path = os.path.join(tmp, "pg.log")
        os.mkdir(self.data, 0o700)
        os.mkdir(self.sock, 0o755)
        for path in (self.data, self.sock):
            _chown_to_pg_owner(path)
        with open(self.log_path, "w"):
            pass
        _chown_to_pg_owner(self.log_path)
        self.port = free_port()
        self.settings = ("listen_addresses=127.0.0.1",) + tuple(settings)
        subprocess.run(as_pg_owner([PG_BIN + "/initdb", "-D", self.data, "-U", "postgres",
                                    "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"]),
                       check=True, capture_output=True, timeout=120)
        self.start()

    def dsn(self, dbname="postgres"):
        return ("host=127.0.0.1 port=%d user=postgres dbname=%s connect_timeout=2"
                % (self.port, dbname))

    def _ctl(self, *args, check=True):
        return subprocess.run(as_pg_owner([PG_BIN + "/pg_ctl", "-D", self.data, *args]),
                              check=check, capture_output=True, text=True, timeout=120)

    def start(self):
        opts = "-p %d -k %s %s" % (self.port, self.sock,
                                   " ".join("-c " + s for s in self.settings))
        self._ctl("-l", self.log_path, "-o", opts, "-w", "-t", "60", "start")

    def stop(self, mode="fast"):
        """Stops the cluster if it runs (no error if it does not)."""
        self._ctl("-m", mode, "-w", "-t", "60", "stop", check=False)

    def crash_restart(self):
        """A crash: every backend killed at once (no checkpoint), then crash recovery."""
        self._ctl("-m", "immediate", "-w", "-t", "60", "stop")
        self.start()

    def create_database(self, name):
        psql("CREATE DATABASE " + name, self.dsn())
        return self.dsn(name)


def generate_stubs(root, out):
    """Python modules of the API (approvals.v1, google.rpc status and details) and of the
    health and reflection services into out, which goes first on sys.path."""
    base = ["protoc", "--python_out=" + out, "--grpc_python_out=" + out,
            "--plugin=protoc-gen-grpc_python=/usr/bin/grpc_python_plugin"]
    subprocess.run(base + ["-I", os.path.join(root, "proto"), "approvals/v1/approvals.proto",
                           "google/rpc/status.proto", "google/rpc/error_details.proto",
                           "google/api/annotations.proto", "google/api/http.proto"],
                   check=True, timeout=60)
    # From their own folder, so that no package named `grpc` shadows grpcio.
    subprocess.run(base + ["-I", os.path.join(root, "tests", "e2e", "protos"), "health.proto",
                           "reflection.proto"], check=True, timeout=60)
    sys.path.insert(0, out)


def use_python_client(root, tmp):
    """Makes the client/python package (approvald_client) importable, imported the documented
    way: stubs from its generate.sh in tmp/gen, named by APPROVALD_PY_GEN. Returns tmp/gen."""
    gen = os.path.join(tmp, "gen")
    client_dir = os.path.join(root, "client", "python")
    subprocess.run([os.path.join(client_dir, "generate.sh"), gen], check=True, timeout=60)
    os.environ["APPROVALD_PY_GEN"] = gen
    sys.path.insert(0, client_dir)
    return gen


def approval_stub(channel):
    """An ApprovalService stub (the modules that generate_stubs wrote) on channel."""
    from approvals.v1 import approvals_pb2_grpc
    return approvals_pb2_grpc.ApprovalServiceStub(channel)


def ready_channel(target, timeout=10):
    """A plaintext channel to target, connected (or grpc.FutureTimeoutError)."""
    import grpc
    channel = grpc.insecure_channel(target)
    grpc.channel_ready_future(channel).result(timeout=timeout)
    return channel


def new_token(approvalctl, principal, roles):
    """(token, tokens-file line) from `approvalctl token new`; roles: "a,b"."""
    out = subprocess.run([approvalctl, "token", "new", "--principal", principal, "--roles", roles],
                         check=True, capture_output=True, text=True, timeout=30).stdout
    return (re.search(r"^token: (\S+)$", out, re.M).group(1),
            re.search(r"^tokens-file line: (.+)$", out, re.M).group(1))


def write_tokens(approvalctl, path, principals):
    """principals: {name: roles}. Writes the tokens file; returns {name: token}."""
    tokens, lines = {}, []
    for name, roles in principals.items():
        tokens[name], line = new_token(approvalctl, name, roles)
        lines.append(line)
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return tokens


# The principals of the refund.provider tests: who creates, approves and executes refunds.
REFUND_PRINCIPALS = {"agent": "requester", "alice": "approver", "worker": "executor"}


def refund_provider_config(lease="5s", max_attempts=3, backoff_initial="100ms",
                           backoff_max="1s"):
    """The approvald YAML config with one `handler: external` action type, refund.provider
    (order_id and amount_cents; roles requester, approver, executor), run by workers that
    call client/python/fake_payments.py: its lease, max_attempts and retry backoff as given."""
    return """\
version: 1
action_types:
  - name: refund.provider
    description: Refund through the payment provider, run by an external worker.
    handler: external
    parameters:
      - {name: order_id, type: integer, required: true}
      - {name: amount_cents, type: integer, required: true}
    requester_roles: [requester]
    approver_roles: [approver]
    executor_roles: [executor]
    lease: %s
    max_attempts: %d
    backoff: {initial: %s, max: %s}
""" % (lease, max_attempts, backoff_initial, backoff_max)

def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_certs(d):
    """A CA, a server certificate for 127.0.0.1/localhost, a client certificate whose SAN URI
    names the principal, and client certificates for the fallbacks: only a DNS SAN, no SAN (the
    CN), a URI and a DNS SAN."""
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
            "-days", "2", "-subj", "/CN=approvald test CA", cwd=d)
    for name, subj, san in [
            ("server", "/CN=localhost", "subjectAltName=DNS:localhost,IP:127.0.0.1"),
            ("client", "/CN=agent-cn", "subjectAltName=URI:spiffe://approvald.test/agent"),
            ("stranger", "/CN=stranger", "subjectAltName=DNS:stranger.example"),
            ("dns-client", "/CN=dns-client-cn", "subjectAltName=DNS:ops.approvald.test"),
            ("cn-client", "/CN=cn-only-client", "basicConstraints=CA:FALSE"),
            ("uri-dns-client", "/CN=robot-cn",
             "subjectAltName=URI:spiffe://approvald.test/robot,DNS:robot.approvald.test")]:
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", name + ".key", "-out",
                name + ".csr", "-subj", subj, cwd=d)
        with open(os.path.join(d, name + ".ext"), "w") as f:
            f.write(san + "\n")
        openssl("x509", "-req", "-in", name + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", name + ".pem", "-days", "2", "-extfile", name + ".ext",
                cwd=d)


class Approvald:
    """An approvald listening on host (127.0.0.1 unless told). The first start() takes a free
    port; later starts (after kill9() or stop()) listen on the same one. Each start logs to its
    own file in tmp."""

    def __init__(self, binary, dsn, tokens_file, config_file, tmp, name="approvald", args=(),
                 start=True, host="127.0.0.1"):
        self.binary, self.dsn, self.tmp, self.name, self.host = binary, dsn, tmp, name, host
        self.tokens_file, self.config_file, self.args = tokens_file, config_file, tuple(args)
        self.port = 0
        self.starts = 0
        self.proc = None
        self.log_path = None
        if start:
            self.start()

    @property
    def target(self):
        return "127.0.0.1:%d" % self.port

    def output(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def start(self, timeout=30):
        """Starts it and waits until its log says that it listens (the line with "(port N)").
        A restart on the port may find it still held for a moment: tried up to 5 times."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        for _ in range(5):
            self.starts += 1
            self.log_path = os.path.join(self.tmp, "%s-%d.log" % (self.name, self.starts))
            cmd = [self.binary, "--dsn", self.dsn, "--tokens", self.tokens_file, "--listen",
                   "%s:%d" % (self.host, self.port), "--migrate", *self.args]
            if self.config_file:
                cmd += ["--config", self.config_file]
            with open(self.log_path, "w") as log:
                self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
            port = wait_listening(self.proc, self.log_path, timeout)
            if port is not None:
                self.port = port
                return
            if self.proc.poll() is None:  # neither listening nor exited: no retry
                self.kill9()
                break
            time.sleep(0.2)  # bounded retry of a failed bind (no condition to wait for)
        raise RuntimeError("%s did not start:\n%s" % (self.name, self.output()))

    def kill9(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)

    def restart(self):
        """kill -9, then a new process on the same port."""
        self.kill9()
        self.start()

    def stop(self, grace=20, check=False):
        """SIGTERM; kill -9 if it has not exited after grace seconds (check: then raise)."""
        if self.proc:
            terminate(self.proc, grace, check)


class DatabaseTestCase(unittest.TestCase):
    """A test class on the PostgreSQL that tests/run started: its setUpClass calls
    set_up_database first. md(who) is the call metadata with who's bearer token."""

    @classmethod
    def set_up_database(cls, name, approvalctl=None, principals=None, stubs_root=None):
        """cls.tmp, a temp dir, and cls.dbname, a fresh database (name goes into both names),
        its DSN cls.dsn (cls.server_dsn: APPROVALD_TEST_DSN). principals ({name: roles}): their
        tokens from approvalctl in cls.tokens ({name: token}) and the file cls.tokens_file.
        stubs_root: generate_stubs of that repository into cls.tmp. Class cleanups remove the
        database and the temp dir after tearDownClass, also when setUpClass failed half way."""
        cls.server_dsn = os.environ.get("APPROVALD_TEST_DSN", "")
        if not cls.server_dsn:
            raise RuntimeError("APPROVALD_TEST_DSN is not set: run tests/run")
        cls.tmp = tempfile.mkdtemp(prefix="approvald-%s-" % name)
        cls.addClassCleanup(shutil.rmtree, cls.tmp, ignore_errors=True)
        cls.dbname = "approvald_%s_%s" % (name, uuid.uuid4().hex[:12])
        admin = cls.server_dsn + " dbname=postgres"
        psql("CREATE DATABASE " + cls.dbname, admin)
        cls.addClassCleanup(psql, "DROP DATABASE IF EXISTS %s WITH (FORCE)" % cls.dbname, admin)
        cls.dsn = cls.server_dsn + " dbname=" + cls.dbname
        cls.tokens_file = os.path.join(cls.tmp, "tokens")
        if principals:
            cls.tokens = write_tokens(approvalctl, cls.tokens_file, principals)
        if stubs_root:
            generate_stubs(stubs_root, cls.tmp)

    def md(self, who):
        """Call metadata with the bearer token of principal who."""
        return (("authorization", "Bearer " + self.tokens[who]),)


def run_tests():
    """unittest.main of the calling script, verbose; a last line "N passed, M failed"; exits 1
    if any test failed."""
    result = unittest.main(argv=[sys.argv[0], "-v"], exit=False).result
    failed = len(result.failures) + len(result.errors)
    print("%d passed, %d failed" % (max(result.testsRun - failed, 0), failed))
    sys.exit(1 if failed else 0)
