#!/usr/bin/python3
"""PostgreSQL failover under load: approvald in front of a real pg_auto_failover formation.

One round:
  1. builds a formation on this machine with Debian's pg_auto_failover: a monitor, a primary
     and a synchronous standby, each on its own free port, all under TMP, run as an
     unprivileged OS user (`postgres` when invoked as root), with the monitor's six health
     settings lowered so that a failover takes about 11 s;
  2. creates the table of a `sql` action (`ha.effect`, one row in ha_effects per run of the
     action; no key, so a duplicate would show as two rows) and starts approvald with a
     multi-host DSN (target_session_attrs=read-write);
  3. runs a load (a few threads: CreateApproval then Approve, 2 s deadline per call), kills the
     primary's whole node (pg_autoctl run, its children and the postmaster with its backends:
     SIGKILL), waits for the monitor to promote the standby, keeps the load going until approvald
     has served OK again for a few seconds, then stops the load;
  4. checks on the new primary that every acknowledged approval ran its action exactly once, no
     approval ran it twice, every approval is in a consistent state, the failed calls got only
     UNAVAILABLE or DEADLINE_EXCEEDED, and approvald never exited.

Prints the figures of the round and a last line `PASS ...` or `FAIL ...`; exit code 0 or 1.
Everything it started is stopped in a `finally`; tests/ha/run also kills what is left (the
process groups listed in TMP/pids) and removes TMP.

usage: failover_ha.py APPROVALD APPROVALCTL REPO_ROOT TMP
"""

import collections
import json
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

APPROVALD, APPROVALCTL, ROOT, TMP = sys.argv[1:5]
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
import harness  # noqa: E402  free ports, stubs, tokens, waiting for approvald and stopping it
PG_BIN = harness.PG_BIN
PG_CTL = PG_BIN + "/pg_ctl"
PG_AUTOCTL = shutil.which("pg_autoctl") or "/usr/bin/pg_autoctl"

ACTION = "ha.effect"
CALL_DEADLINE = 2.0        # seconds, every gRPC call of the load
LOAD_THREADS = 4
PACE = 0.01                # pause of a load thread between two create+approve (seconds)
WARMUP = 4.0               # load before the kill (seconds)
SERVE_OK_AFTER = 4.0       # load kept after the first OK that follows the failover (seconds)
FAILOVER_TIMEOUT = 90.0    # kill -> the monitor shows the standby promoted
RECOVERY_TIMEOUT = 60.0    # promotion -> approvald answers OK again
LATE_GRACE = 1.0           # calls started this long after the first OK must all succeed
HEALTH_TIMEOUT = 30.0      # first OK after the failover -> health SERVING again
RETRYABLE = {"UNAVAILABLE", "DEADLINE_EXCEEDED"}

# toolchain.md: with these (default: about 51 s) a failover takes 11-12 s.
MONITOR_SETTINGS = {
    "pgautofailover.health_check_period": 1000,
    "pgautofailover.health_check_timeout": 1000,
    "pgautofailover.health_check_max_retries": 1,
    "pgautofailover.health_check_retry_delay": 500,
    "pgautofailover.node_considered_unhealthy_timeout": 5000,
    "pgautofailover.primary_demote_timeout": 5000,
}

CONFIG = """\
version: 1
action_types:
  - name: ha.effect
    description: Writes one side-effect row per run; a duplicate run shows as a second row.
    handler: sql
    parameters:
      - {name: worker, type: integer, required: true}
      - {name: seq, type: integer, required: true}
    additional_parameters: false
    requester_roles: [requester]
    approver_roles: [approver]
    sql:
      - statement: |
          INSERT INTO ha_effects (approval_id, decided_by, worker, seq)
          VALUES (:approval_id, :decided_by, :worker, :seq)
          RETURNING approval_id
        expect_rows: {exactly: 1}
"""

SCHEMA = """
CREATE TABLE ha_effects (
    approval_id uuid NOT NULL,          -- deliberately no key: a second run is a second row
    decided_by  text NOT NULL,
    worker      integer NOT NULL,
    seq         integer NOT NULL,
    at          timestamptz NOT NULL DEFAULT clock_timestamp()
);
"""


class Failure(Exception):
    pass


def log(msg):
    print("[%s] %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


def tail(path, lines=40):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError as e:
        return "(%s)" % e


def record_pgid(pgid):
    """tests/ha/run kills these process groups if this script could not clean up."""
    with open(os.path.join(TMP, "pids"), "a") as f:
        f.write("%d\n" % pgid)


def proc_table():
    """pid -> (ppid, pgid) of every process."""
    table = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            table[int(name)] = (int(fields[1]), int(fields[2]))
        except (OSError, IndexError, ValueError):
            pass
    return table


def postmaster_pid(pgdata):
    try:
        with open(os.path.join(pgdata, "postmaster.pid")) as f:
            return int(f.readline().strip())
    except (OSError, ValueError):
        return None


def cmdline_has(pid, text):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return text.encode() in f.read()
    except OSError:
        return False


class Formation:
    """A pg_auto_failover monitor and two data nodes, all under TMP, run as an unprivileged user."""

    def __init__(self):
        self.as_root = os.getuid() == 0
        self.user = "postgres" if self.as_root else pwd.getpwuid(os.getuid()).pw_name
        self.logs = os.path.join(TMP, "logs")
        os.makedirs(self.logs, exist_ok=True)
        self.sock = os.path.join(TMP, "sock")
        dirs = {"HOME": "home", "XDG_CONFIG_HOME": "config", "XDG_DATA_HOME": "data",
                "XDG_RUNTIME_DIR": "runtime"}
        self.env = {}
        for var, sub in dirs.items():
            self.env[var] = os.path.join(TMP, sub)
        for path in list(self.env.values()) + [self.sock, os.path.join(TMP, "pgdata")]:
            os.makedirs(path, mode=0o700, exist_ok=True)
            os.chmod(path, 0o700)
            if self.as_root:
                shutil.chown(path, self.user, self.user)
        # Debian's socket dir /var/run/postgresql is not writable by the user: one private one.
        self.env.update(PG_REGRESS_SOCK_DIR=self.sock, PGHOST=self.sock, LC_ALL="C.UTF-8",
                        LANG="C.UTF-8", PATH="/usr/bin:/bin:" + PG_BIN, USER=self.user,
                        LOGNAME=self.user)
        self.pgdata = {n: os.path.join(TMP, "pgdata", n) for n in ("monitor", "node1", "node2")}
        self.port = {n: harness.free_port() for n in self.pgdata}
        self.runs = {}          # name -> Popen of `pg_autoctl run`
        self.monitor_uri = None

    def cmd(self, args):
        env = ["%s=%s" % kv for kv in sorted(self.env.items())]
        if self.as_root:
            return ["runuser", "-u", self.user, "--", "env", "-i", *env, *args]
        return ["env", "-i", *env, *args]

    def ctl(self, args, timeout=120, check=True):
        try:
            out = subprocess.run(self.cmd(args), capture_output=True, text=True, timeout=timeout,
                                 stdin=subprocess.DEVNULL, cwd=TMP)
        except subprocess.TimeoutExpired as e:
            raise Failure("timed out after %ss: %s\n%s" % (timeout, " ".join(args),
                                                          (e.stderr or b"")[-3000:]))
        if check and out.returncode != 0:
            raise Failure("failed (exit %d): %s\n%s%s" % (out.returncode, " ".join(args),
                                                         out.stdout[-3000:], out.stderr[-3000:]))
        return out

    def psql(self, node, sql, dbname="postgres", timeout=30):
        """psql through the private socket, as the cluster's owner."""
        out = self.ctl(["psql", "-X", "-p", str(self.port[node]), "-d", dbname, "-v",
                        "ON_ERROR_STOP=1", "-Atc", sql], timeout=timeout)
        return out.stdout

    def common_args(self, name):
        return ["--pgdata", self.pgdata[name], "--pgport", str(self.port[name]),
                "--hostname", "127.0.0.1", "--listen", "127.0.0.1", "--auth", "trust",
                "--no-ssl", "--pgctl", PG_CTL]

    def start_run(self, name):
        logf = open(os.path.join(self.logs, name + ".log"), "a")
        proc = subprocess.Popen(self.cmd([PG_AUTOCTL, "run", "--pgdata", self.pgdata[name]]),
                                stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, cwd=TMP)
        logf.close()
        record_pgid(proc.pid)
        self.runs[name] = proc

    def create_monitor(self):
        t = time.time()
        with open(os.path.join(self.logs, "create-monitor.log"), "w") as f:
            f.write(self.ctl([PG_AUTOCTL, "create", "monitor",
                              *self.common_args("monitor")]).stderr)
        self.start_run("monitor")
        self.monitor_uri = self.ctl([PG_AUTOCTL, "show", "uri", "--pgdata", self.pgdata["monitor"],
                                     "--formation", "monitor"]).stdout.strip()
        self.wait(lambda: self.ctl(["pg_isready", "-q", "-p", str(self.port["monitor"])],
                                   check=False, timeout=10).returncode == 0,
                  30, "the monitor to accept connections", ["monitor"])
        for key, value in MONITOR_SETTINGS.items():
            self.psql("monitor", "ALTER SYSTEM SET %s = %d" % (key, value), "pg_auto_failover")
        self.psql("monitor", "SELECT pg_reload_conf()", "pg_auto_failover")
        want = ",".join(str(v) for v in MONITOR_SETTINGS.values())
        self.wait(lambda: self.psql("monitor", "SELECT string_agg(setting, ',' ORDER BY ord) FROM "
                                    "unnest(ARRAY[%s]) WITH ORDINALITY AS k(name, ord) JOIN "
                                    "pg_settings USING (name)" % ",".join(
                                        "'%s'" % k for k in MONITOR_SETTINGS),
                                    "pg_auto_failover").strip() == want,
                  10, "the monitor settings to be reloaded", ["monitor"])
        log("monitor up on 127.0.0.1:%d (%.1f s)" % (self.port["monitor"], time.time() - t))

    def create_node(self, name):
        t = time.time()
        with open(os.path.join(self.logs, "create-%s.log" % name), "w") as f:
            f.write(self.ctl([PG_AUTOCTL, "create", "postgres", *self.common_args(name),
                              "--name", name, "--monitor", self.monitor_uri], timeout=180).stderr)
        self.start_run(name)
        log("%s created on 127.0.0.1:%d (%.1f s)" % (name, self.port[name], time.time() - t))

    def state(self):
        """The monitor's view: nodename -> node dict ({} if the monitor did not answer)."""
        out = self.ctl([PG_AUTOCTL, "show", "state", "--pgdata", self.pgdata["monitor"], "--json"],
                       check=False, timeout=15)
        if out.returncode != 0:
            return {}
        try:
            return {n["nodename"]: n for n in json.loads(out.stdout)}
        except (ValueError, KeyError, TypeError):
            return {}

    @staticmethod
    def settled(node, *states):
        return (node is not None and node["current_group_state"] in states
                and node["assigned_group_state"] == node["current_group_state"])

    def describe(self, st=None):
        st = self.state() if st is None else st
        return ", ".join("%s:%d %s/%s health=%s" % (n, v["nodeport"], v["current_group_state"],
                                                   v["assigned_group_state"], v["health"])
                         for n, v in sorted(st.items())) or "(monitor did not answer)"

    def wait(self, cond, seconds, what, nodes=()):
        deadline = time.time() + seconds
        while time.time() < deadline:
            if cond():
                return
            time.sleep(0.2)
        raise Failure("timed out after %ds waiting for %s; formation: %s\n%s"
                      % (seconds, what, self.describe(), self.log_tails(nodes)))

    def build(self):
        t = time.time()
        self.create_monitor()
        self.create_node("node1")
        self.wait(lambda: self.settled(self.state().get("node1"), "single"), 60,
                  "node1 to be a single primary", ["monitor", "node1"])
        self.create_node("node2")
        self.wait(lambda: (self.settled(self.state().get("node1"), "primary")
                           and self.settled(self.state().get("node2"), "secondary")), 90,
                  "node1 primary and node2 secondary", ["monitor", "node1", "node2"])
        sync = self.psql("node1", "SHOW synchronous_standby_names").strip()
        if not sync:
            raise Failure("node1 has no synchronous standby (synchronous_standby_names is empty)")
        log("formation ready in %.1f s: %s; synchronous_standby_names = %s"
            % (time.time() - t, self.describe(), sync))

    def kill_node(self, name):
        """Hard fault: SIGKILL the node's `pg_autoctl run` group, its postmaster and every backend
        at once (postgres children are session leaders of their own, so the group is not enough).
        """
        table = proc_table()
        run = self.runs[name]
        pm = postmaster_pid(self.pgdata[name])
        victims = {pid for pid, (_, pgid) in table.items() if pgid == run.pid}
        if pm is not None and pm in table and cmdline_has(pm, self.pgdata[name]):
            victims.add(pm)
            victims |= {pid for pid, (ppid, _) in table.items() if ppid == pm}
        killed_at = time.time()
        for pid in victims:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        run.wait(timeout=10)
        return len(victims), killed_at

    def log_tails(self, nodes=("monitor", "node1", "node2"), lines=25):
        parts = []
        for n in nodes:
            parts.append("--- pg_autoctl log of %s (last %d lines) ---\n%s"
                         % (n, lines, tail(os.path.join(self.logs, n + ".log"), lines)))
            pglog = sorted(
                (os.path.join(d, f) for d in [os.path.join(self.pgdata[n], "log")]
                 if os.path.isdir(d) for f in os.listdir(d)), key=os.path.getmtime)
            if pglog:
                parts.append("--- postgres log of %s: %s ---\n%s"
                             % (n, pglog[-1], tail(pglog[-1], lines)))
        return "\n".join(parts)

    def events(self, count=30):
        out = self.ctl([PG_AUTOCTL, "show", "events", "--pgdata", self.pgdata["monitor"],
                        "--count", str(count)], check=False, timeout=15)
        return out.stdout or out.stderr

    def stop(self):
        """pg_autoctl stop on the data nodes, then the monitor; SIGKILL what is left."""
        for name in ("node1", "node2", "monitor"):
            proc = self.runs.get(name)
            if proc is None or proc.poll() is not None:
                continue
            try:
                self.ctl([PG_AUTOCTL, "stop", "--pgdata", self.pgdata[name]], check=False,
                         timeout=20)
            except Failure:
                pass
        for name in ("node1", "node2", "monitor"):
            proc = self.runs.get(name)
            if proc is None:
                continue
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                log("pg_autoctl run of %s did not stop in 20 s: killing it" % name)
        for name in ("node1", "node2", "monitor"):
            if name in self.runs and self.runs[name].poll() is None:
                self.kill_node(name)
            pm = postmaster_pid(self.pgdata[name])
            if pm is not None and cmdline_has(pm, self.pgdata[name]):
                try:
                    os.kill(pm, signal.SIGKILL)
                except ProcessLookupError:
                    pass


class Approvald:
    def __init__(self, dsn, config, tokens):
        self.log_path = os.path.join(TMP, "logs", "approvald.log")
        logf = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [APPROVALD, "--dsn", dsn, "--migrate", "--config", config, "--tokens", tokens,
             "--listen", "127.0.0.1:0", "--shutdown-grace=5s"],
            stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)
        logf.close()
        record_pgid(self.proc.pid)
        port = harness.wait_listening(self.proc, self.log_path, timeout=60)
        if port is None:
            raise Failure("approvald did not start (exit %s):\n%s" % (self.proc.poll(),
                                                                      self.tail()))
        self.addr = "127.0.0.1:%d" % port

    def output(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def tail(self, lines=40):
        return "--- approvald log (last %d lines) ---\n%s" % (lines, tail(self.log_path, lines))

    def stop(self):
        harness.terminate(self.proc)


Call = collections.namedtuple("Call", "method id code start end detail")


class Load:
    """LOAD_THREADS threads, each: CreateApproval of ha.effect, then Approve; every call with a
    CALL_DEADLINE deadline; every outcome recorded as a Call."""

    def __init__(self, addr, agent, alice):
        import grpc
        self.grpc = grpc
        self.addr, self.agent, self.alice = addr, agent, alice
        self.calls = []
        self.lock = threading.Lock()
        self.stop_event = threading.Event()
        self.threads = [threading.Thread(target=self.worker, args=(i,), daemon=True)
                        for i in range(LOAD_THREADS)]

    def add(self, call):
        with self.lock:
            self.calls.append(call)

    def snapshot(self):
        with self.lock:
            return list(self.calls)

    def worker(self, index):
        grpc = self.grpc
        from approvals.v1 import approvals_pb2 as pb
        agent = (("authorization", "Bearer " + self.agent),)
        alice = (("authorization", "Bearer " + self.alice),)
        seq = 0
        with grpc.insecure_channel(self.addr) as channel:
            stub = harness.approval_stub(channel)
            while not self.stop_event.is_set():
                seq += 1
                req = pb.CreateApprovalRequest(action_type=ACTION,
                                               summary="ha load %d/%d" % (index, seq))
                req.action_data.update({"worker": index, "seq": seq})
                start = time.time()
                try:
                    created = stub.CreateApproval(req, metadata=agent, timeout=CALL_DEADLINE)
                    self.add(Call("CreateApproval", created.id, "OK", start, time.time(), ""))
                except grpc.RpcError as e:
                    self.add(Call("CreateApproval", None, e.code().name, start, time.time(),
                                  e.details() or ""))
                    time.sleep(0.05)
                    continue
                start = time.time()
                try:
                    approved = stub.Approve(pb.ApproveRequest(id=created.id),
                                            metadata=alice, timeout=CALL_DEADLINE)
                    code = "OK" if approved.status == pb.APPROVAL_STATUS_APPROVED else \
                        "OK_BUT_" + pb.ApprovalStatus.Name(approved.status)
                    self.add(Call("Approve", created.id, code, start, time.time(), ""))
                except grpc.RpcError as e:
                    self.add(Call("Approve", created.id, e.code().name, start, time.time(),
                                  e.details() or ""))
                    time.sleep(0.05)
                    continue
                time.sleep(PACE)

    def start(self):
        for t in self.threads:
            t.start()

    def stop(self):
        self.stop_event.set()
        for t in self.threads:
            t.join(timeout=CALL_DEADLINE * 2 + 10)
        alive = sum(t.is_alive() for t in self.threads)
        if alive:
            raise Failure("%d load threads did not stop (a call outlived its deadline?)" % alive)


class HealthWatch:
    """Polls grpc.health.v1 of approvald; keeps the transitions as (time, status)."""

    def __init__(self, addr):
        self.addr = addr
        self.changes = []
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        import grpc
        import health_pb2
        import health_pb2_grpc
        last = None
        with grpc.insecure_channel(self.addr) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while not self.stop_event.is_set():
                try:
                    resp = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=1)
                    status = health_pb2.HealthCheckResponse.ServingStatus.Name(resp.status)
                except grpc.RpcError as e:
                    status = "RPC_" + e.code().name
                if status != last:
                    self.changes.append((time.time(), status))
                    last = status
                time.sleep(0.1)

    def start(self):
        self.thread.start()

    def stop(self):
        self.stop_event.set()
        self.thread.join(timeout=10)


def check_database(formation, primary, calls, t_kill):
    """The state on the new primary against what the clients were told. Returns (errors, facts)."""
    errors = []
    rows = formation.psql(primary, """
        SELECT a.id, a.status, a.version, count(e.approval_id)
        FROM approvald.approvals a LEFT JOIN ha_effects e ON e.approval_id = a.id
        GROUP BY a.id, a.status, a.version""", timeout=60).split()
    state = {}
    for r in rows:
        aid, status, version, effects = r.split("|")
        state[aid] = (status, int(version), int(effects))
    dup = formation.psql(primary, "SELECT approval_id, count(*) FROM ha_effects GROUP BY 1 "
                                  "HAVING count(*) > 1").split()
    if dup:
        errors.append("side effect run more than once: %s" % ", ".join(dup[:20]))
    orphans = formation.psql(primary, """
        SELECT e.approval_id || ':' || coalesce(a.status, 'missing') FROM ha_effects e
        LEFT JOIN approvald.approvals a ON a.id = e.approval_id
        WHERE a.status IS DISTINCT FROM 'approved'""").split()
    if orphans:
        errors.append("side-effect rows without an approved approval: %s" % ", ".join(orphans[:20]))
    events = formation.psql(primary, """
        SELECT a.id || ':' || a.status || ':' || count(ev.id) FROM approvald.approvals a
        LEFT JOIN approvald.events ev ON ev.approval_id = a.id AND ev.type = 'approved'
        GROUP BY a.id, a.status
        HAVING count(ev.id) <> (CASE WHEN a.status = 'approved' THEN 1 ELSE 0 END)""").split()
    if events:
        errors.append("'approved' events that do not match the approvals (id:status:events): %s"
                      % ", ".join(events[:20]))
    counts = collections.Counter()
    for aid, (status, version, effects) in state.items():
        counts[status] += 1
        if (status, version, effects) in {("pending", 1, 0), ("approved", 2, 1)}:
            continue
        if status == "failed" and effects == 0:
            continue
        errors.append("approval %s is inconsistent: status %s, version %d, %d effect rows"
                      % (aid, status, version, effects))
    lost_creates, lost_approves = [], []
    for c in calls:
        if c.code != "OK" or c.id is None:
            continue
        got = state.get(c.id)
        if c.method == "CreateApproval" and got is None:
            lost_creates.append("%s (acknowledged at kill%+.2fs)" % (c.id, c.end - t_kill))
        if c.method == "Approve" and (got is None or got[0] != "approved" or got[2] != 1):
            lost_approves.append("%s now %s (acknowledged at kill%+.2fs)"
                                 % (c.id, got, c.end - t_kill))
    if lost_creates:
        errors.append("%d acknowledged creates are missing on the new primary: %s"
                      % (len(lost_creates), "; ".join(lost_creates[:10])))
    if lost_approves:
        errors.append("%d acknowledged approvals are not approved with exactly one effect row: %s"
                      % (len(lost_approves), "; ".join(lost_approves[:10])))
    return errors, counts, state


def fmt_offset(seconds):
    return "+%.1f s" % seconds if seconds is not None else " (no event)"


def monitor_timeline(formation, t_kill):
    """Seconds from the kill to the monitor's own events (pgautofailover.event): node1 marked
    unhealthy, node2 reporting wait_primary (or primary)."""
    out = formation.psql("monitor", """
        SELECT 'unhealthy', min(extract(epoch FROM eventtime)) FROM pgautofailover.event
         WHERE nodename = 'node1' AND description LIKE '%%marked as unhealthy%%'
           AND eventtime >= to_timestamp(%(t)f)
        UNION ALL
        SELECT 'promoted', min(extract(epoch FROM eventtime)) FROM pgautofailover.event
         WHERE nodename = 'node2' AND reportedstate IN ('wait_primary', 'primary')
           AND eventtime >= to_timestamp(%(t)f)""" % {"t": t_kill - 1}, "pg_auto_failover")
    timeline = {}
    for line in out.split():
        name, _, epoch = line.partition("|")
        timeline[name] = float(epoch) - t_kill if epoch else None
    return timeline


def result(line):
    """The round's last line, also kept in TMP/result for tests/ha/run."""
    print(line, flush=True)
    with open(os.path.join(TMP, "result"), "w") as f:
        f.write(line + "\n")


def run_round():
    formation = Formation()
    daemon = None
    load = None
    health = None
    facts = {}
    try:
        formation.build()
        formation.psql("node1", SCHEMA)
        config = os.path.join(TMP, "approvald.yaml")
        with open(config, "w") as f:
            f.write(CONFIG)
        tokens = os.path.join(TMP, "tokens")
        tokens_of = harness.write_tokens(APPROVALCTL, tokens,
                                         {"agent": "requester", "alice": "approver"})
        agent, alice = tokens_of["agent"], tokens_of["alice"]
        os.chmod(tokens, 0o600)
        dsn = ("host=127.0.0.1,127.0.0.1 port=%d,%d target_session_attrs=read-write "
               "connect_timeout=2 user=%s dbname=postgres"
               % (formation.port["node1"], formation.port["node2"], formation.user))
        daemon = Approvald(dsn, config, tokens)
        log("approvald on %s, DSN: %s" % (daemon.addr, dsn))
        gen = os.path.join(TMP, "gen")
        os.makedirs(gen, exist_ok=True)
        harness.generate_stubs(ROOT, gen)

        load = Load(daemon.addr, agent, alice)
        health = HealthWatch(daemon.addr)
        health.start()
        load.start()
        time.sleep(WARMUP)
        before = load.snapshot()
        ok_before = sum(1 for c in before if c.method == "Approve" and c.code == "OK")
        bad_before = [c for c in before if c.code != "OK"]
        if ok_before == 0:
            raise Failure("no approval was acknowledged in %.0f s of load before the fault:\n%s"
                          % (WARMUP, daemon.tail()))
        if bad_before:
            raise Failure("calls failed before the fault: %s\n%s"
                          % (collections.Counter((c.method, c.code) for c in bad_before),
                             daemon.tail()))
        st = formation.state()
        primary = [n for n, v in st.items() if v["current_group_state"] == "primary"]
        if primary != ["node1"]:
            raise Failure("expected node1 as the only primary before the fault: "
                          + formation.describe(st))
        log("load running: %d approvals acknowledged in %.0f s; killing node1 (the primary)"
            % (ok_before, WARMUP))

        victims, t_kill = formation.kill_node("node1")
        # Calls that start from here on cannot reach node1: an OK among them is served by node2.
        t_dead = time.time()
        log("node1 killed (%d processes, SIGKILL, %.0f ms)" % (victims, (t_dead - t_kill) * 1000))

        # The monitor promotes node2: wait_primary (it has no standby left to wait for).
        t_promoted = None
        seen = []
        while time.time() < t_kill + FAILOVER_TIMEOUT:
            if daemon.proc.poll() is not None:
                raise Failure("approvald exited (code %s) during the failover\n%s"
                              % (daemon.proc.returncode, daemon.tail()))
            st = formation.state()
            node2 = st.get("node2")
            if node2 and (not seen or seen[-1][1] != (node2["current_group_state"],
                                                      node2["assigned_group_state"])):
                seen.append((time.time() - t_kill, (node2["current_group_state"],
                                                     node2["assigned_group_state"])))
            if formation.settled(node2, "wait_primary", "primary"):
                t_promoted = time.time()
                break
            time.sleep(0.2)
        if t_promoted is None:
            raise Failure("the monitor did not promote node2 within %.0f s; node2 went through %s"
                          "\n%s\n%s\n%s" % (FAILOVER_TIMEOUT, seen, formation.describe(),
                                            formation.events(), formation.log_tails()))
        facts["failover"] = t_promoted - t_kill
        log("monitor: node2 promoted %.1f s after the kill (states of node2: %s)"
            % (facts["failover"], " -> ".join("%s/%s@%.1fs" % (s[1][0], s[1][1], s[0])
                                             for s in seen)))

        # approvald serves again: the first OK call started after the kill, then a few seconds.
        first_ok = None
        deadline = t_promoted + RECOVERY_TIMEOUT
        while time.time() < deadline:
            if daemon.proc.poll() is not None:
                raise Failure("approvald exited (code %s) after the failover\n%s"
                              % (daemon.proc.returncode, daemon.tail()))
            if first_ok is None:
                oks = [c.end for c in load.snapshot() if c.code == "OK" and c.start > t_dead]
                if oks:
                    first_ok = min(oks)
            if first_ok is not None and time.time() >= first_ok + SERVE_OK_AFTER:
                break
            time.sleep(0.1)
        if first_ok is None:
            recent = [c for c in load.snapshot() if c.start > time.time() - 5]
            raise Failure("approvald answered no call with OK within %.0f s of the promotion; "
                          "codes of the last 5 s: %s; health: %s\n%s\n%s"
                          % (RECOVERY_TIMEOUT, collections.Counter(c.code for c in recent),
                             health.changes[-5:], daemon.tail(), formation.log_tails(["node2"])))
        load.stop()
        t_stop = time.time()
        # Health follows the event listener, which reconnects with its own backoff: give it
        # HEALTH_TIMEOUT after the first OK to report SERVING again.
        while time.time() < first_ok + HEALTH_TIMEOUT and not (
                health.changes and health.changes[-1][1] == "SERVING"
                and health.changes[-1][0] > t_kill):
            time.sleep(0.1)
        health.stop()
        calls = load.snapshot()
        facts["recovery"] = first_ok - t_kill

        errors = []
        if daemon.proc.poll() is not None:
            errors.append("approvald exited with code %s (it must survive the failover)"
                          % daemon.proc.returncode)
        after_kill = [c for c in calls if c.end > t_kill]
        failed = [c for c in calls if c.code != "OK"]
        bad_codes = [c for c in failed if c.code not in RETRYABLE]
        if bad_codes:
            errors.append("%d calls failed with a non-retryable code: %s; e.g. %s"
                          % (len(bad_codes), collections.Counter((c.method, c.code)
                                                                 for c in bad_codes),
                             "; ".join("%s %s %s: %s" % (c.method, c.id, c.code, c.detail)
                                       for c in bad_codes[:5])))
        serving = [t for t, status in health.changes if t > t_kill and status == "SERVING"]
        if not serving:
            errors.append("approvald's health did not return to SERVING within %.0f s of the "
                          "first OK after the failover (changes: %s)"
                          % (HEALTH_TIMEOUT, [(round(t - t_kill, 1), s)
                                              for t, s in health.changes]))
        slow = max((c.end - c.start for c in calls), default=0)
        if slow > CALL_DEADLINE + 2:
            errors.append("a call took %.2f s with a %.0f s deadline" % (slow, CALL_DEADLINE))
        late_failures = [c for c in failed if c.start > first_ok]
        if not [c for c in failed if c.start > t_dead]:
            errors.append("no call failed after the kill: did the fault take effect?")
        after_grace = [c for c in late_failures if c.start > first_ok + LATE_GRACE]
        if after_grace:
            errors.append("%d calls failed more than %.0f s after approvald served OK again: %s"
                          % (len(after_grace), LATE_GRACE,
                             "; ".join("%s at kill%+.2fs %s: %s" % (
                                 c.method, c.start - t_kill, c.code, c.detail[:120])
                                 for c in after_grace[:5])))
        ok_after = [c for c in calls if c.start > first_ok and c.code == "OK"]
        if not ok_after:
            errors.append("no OK call after the first one that followed the failover")

        # Data checks on the new primary (the node the monitor promoted).
        db_errors, counts, state = check_database(formation, "node2", calls, t_kill)
        errors += db_errors

        monitor = monitor_timeline(formation, t_kill)
        if monitor.get("promoted") is not None:
            facts["failover"] = monitor["promoted"]

        acked = [c for c in calls if c.method == "Approve" and c.code == "OK"]
        creates = [c for c in calls if c.method == "CreateApproval" and c.code == "OK"]
        by_code = collections.Counter("%s %s" % (c.method, c.code) for c in failed)
        log("figures:")
        log("  approvals acknowledged (Approve OK): %d (%d before the kill, %d after); "
            "creates OK: %d" % (len(acked), sum(c.end <= t_kill for c in acked),
                                sum(c.end > t_kill for c in acked), len(creates)))
        log("  calls that failed during the switch: %d (%s)" % (
            len(failed), ", ".join("%s: %d" % kv for kv in sorted(by_code.items())) or "none"))
        log("  calls answered after the kill: %d; slowest call: %.2f s (deadline %.0f s); "
            "failures after the first OK: %d" % (len(after_kill), slow, CALL_DEADLINE,
                                                 len(late_failures)))
        log("  failover per the monitor's events: node1 marked unhealthy at kill%s, node2 "
            "reported wait_primary at kill%s (seen by polling at kill+%.1f s)"
            % (fmt_offset(monitor.get("unhealthy")), fmt_offset(monitor.get("promoted")),
               t_promoted - t_kill))
        log("  kill -> first OK from approvald: %.1f s" % facts["recovery"])
        log("  health of approvald: %s%s" % (" -> ".join(
            "%s@kill%+.1fs" % (s, t - t_kill) for t, s in health.changes) or "-",
            " (SERVING %.1f s after the first OK)" % (serving[0] - first_ok) if serving else ""))
        log("  on node2: %s; %d effect rows" % (
            ", ".join("%s %d" % kv for kv in sorted(counts.items())),
            sum(v[2] for v in state.values())))
        failed_approves = [c for c in failed if c.method == "Approve"]
        for c in failed_approves[:20]:
            got = state.get(c.id)
            log("  failed Approve at kill%+.2fs after %.2f s: %s, now %s: %s"
                % (c.start - t_kill, c.end - c.start, c.code,
                   "%s v%d with %d effect rows" % got if got else "missing",
                   c.detail[:160].replace("\n", " ")))
        retry_lines = len(re.findall(r"code=(?:UNAVAILABLE|DEADLINE_EXCEEDED)", daemon.output()))
        log("  approvald log: %d calls answered UNAVAILABLE/DEADLINE_EXCEEDED; load stopped "
            "%.1f s after the kill" % (retry_lines, t_stop - t_kill))
        facts.update(acked=len(acked), failed=len(failed), codes=dict(by_code))
        if errors:
            raise Failure("\n".join(errors) + "\n" + daemon.tail(60) + "\n"
                          + formation.log_tails(["node2"]) + "\n" + formation.events())
        result("PASS acknowledged=%d failed_calls=%d (%s) recovery=%.1fs failover=%.1fs" % (
            len(acked), len(failed), ", ".join("%s=%d" % kv for kv in sorted(by_code.items())),
            facts["recovery"], facts["failover"]))
        return True
    except Failure as e:
        print("\n%s" % e, flush=True)
        result("FAIL %s" % str(e).splitlines()[0][:200].rstrip(":"))
        return False
    except Exception as e:  # a bug of this script or an unexpected error: still a clear FAIL
        import traceback
        traceback.print_exc()
        if daemon is not None:
            print(daemon.tail(60), flush=True)
        print(formation.log_tails(), flush=True)
        result("FAIL unexpected %s: %s" % (type(e).__name__, str(e)[:200]))
        return False
    finally:
        if load is not None:
            load.stop_event.set()
        if health is not None:
            health.stop_event.set()
        if daemon is not None:
            daemon.stop()
        formation.stop()


def main():
    def on_signal(signum, _frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # let the cleanup finish
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        raise KeyboardInterrupt("signal %d" % signum)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        ok = run_round()
    except KeyboardInterrupt as e:
        result("FAIL interrupted (%s); everything started was stopped" % e)
        ok = False
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
