#!/usr/bin/python3
"""Several approvald replicas on one database, a crash in the middle of an action, and SIGTERM
with calls in flight: the action of an approval runs exactly once through all of it.

One fresh database of the PostgreSQL that tests/run started, with a table `effects` that the
actions write to (one row per execution):
  effect.write  INSERT INTO effects (approval_id) VALUES (:approval_id), exactly 1 row
  effect.slow   SELECT pg_sleep(3), then the same insert
Clients are the approvald_client package (client/python), stubs from client/python/generate.sh.

  1. three replicas; 50 rounds of 32 concurrent Approves of one approval, spread over the
     replicas: one OK, 31 ALREADY_PROCESSED, one effects row. A watcher on replica 1 sees the
     APPROVED events of approvals decided through the other replicas.
  2. kill -9 of the replica that is running an action: nothing is committed (still PENDING,
     version 1, no effects row); a new replica approves it, once.
  3. SIGTERM with 5 slow Approves running: all 5 finish OK within --shutdown-grace, exit 0.
  4. two replicas sweeping every 100 ms; 1,000 approvals that expire at about the same moment:
     each becomes EXPIRED once, with exactly one EXPIRED event (SQL), and the replicas' logged
     counts add up to 1,000.
  5. `approvalctl watch --json` on a replica that is restarted (SIGTERM, then a new one on the
     same port) while another replica writes events: it reconnects and prints every event of
     the log once, in event_id order, none missing; `--status approved` prints exactly the
     events after which the approval is approved; `--type` leaves out other action types.

usage: replicas_e2e.py APPROVALD APPROVALCTL REPO_ROOT   (APPROVALD_TEST_DSN must be set)
"""

import collections
import concurrent.futures
import datetime
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid

APPROVALD, APPROVALCTL, ROOT = sys.argv[1:4]
DSN = os.environ.get("APPROVALD_TEST_DSN", "")
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
import harness  # noqa: E402

APPROVERS = 32
ROUNDS = 50
REPLICAS = 3

CONFIG = """\
version: 1
action_types:
  - name: effect.write
    description: Writes one effects row.
    handler: sql
    sql:
      - statement: INSERT INTO effects (approval_id) VALUES (:approval_id)
        expect_rows: {exactly: 1}
  - name: effect.slow
    description: Sleeps 3 seconds, then writes one effects row.
    handler: sql
    sql:
      - statement: SELECT pg_sleep(3)
      - statement: INSERT INTO effects (approval_id) VALUES (:approval_id)
        expect_rows: {exactly: 1}
  - name: expiry.note
    description: Does nothing; test 4 lets these expire.
  - name: watch.note
    description: Does nothing; test 5 watches these.
"""


def psql(sql, dbname="postgres"):
    """Runs sql; returns its rows as lists of strings."""
    return harness.psql(sql, DSN + " dbname=" + dbname)


wait_until = harness.wait_until


class Daemon:
    """An approvald on the test database, listening on a free port."""

    def __init__(self, name, dsn, tokens_file, config_file, tmp, listen="127.0.0.1:0", args=()):
        self.name = name
        self.log_path = os.path.join(tmp, "approvald-%s-%s.log" % (name, uuid.uuid4().hex[:6]))
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen(
                [APPROVALD, "--dsn", dsn, "--tokens", tokens_file, "--config", config_file,
                 "--listen", listen, "--migrate", "--shutdown-grace=10s",
                 "--pool-size=8",  # test 3 runs 5 slow actions at once
                 *args],
                stdout=log, stderr=subprocess.STDOUT)
        self.port = None

    def wait_started(self, timeout=30):
        self.port = harness.wait_listening(self.proc, self.log_path, timeout)
        if self.port is None:
            raise RuntimeError("approvald %s did not start:\n%s" % (self.name, self.output()))

    @property
    def target(self):
        return "127.0.0.1:%d" % self.port

    def output(self):
        with open(self.log_path) as f:
            return f.read()

    def stop(self):
        harness.terminate(self.proc)


class ReplicasTest(harness.DatabaseTestCase):
    @classmethod
    def setUpClass(cls):
        approvers = {"r%d" % i: "approver" for i in range(APPROVERS)}
        cls.set_up_database("replicas", APPROVALCTL, {"agent": "requester", **approvers})
        harness.use_python_client(ROOT, cls.tmp)
        psql("CREATE TABLE effects (id bigserial PRIMARY KEY, approval_id uuid NOT NULL)",
             cls.dbname)
        # Not migrated up front: the replicas start together with --migrate, so concurrent
        # migrators on an empty database are exercised too.
        cls.config_file = os.path.join(cls.tmp, "approvald.yaml")
        with open(cls.config_file, "w") as f:
            f.write(CONFIG)

    def setUp(self):
        self.started = time.time()
        self.daemons = []
        self.clients = []

    def tearDown(self):
        for client in self.clients:
            client.close()
        for daemon in self.daemons:
            daemon.stop()
        sys.stderr.write("(%.1fs) " % (time.time() - self.started))

    def run(self, result=None):
        """Prints the logs of the test's daemons if it failed."""
        if result is None:
            return super().run(result)
        before = len(result.failures) + len(result.errors)
        super().run(result)
        if len(result.failures) + len(result.errors) > before:
            for daemon in getattr(self, "daemons", []):
                sys.stderr.write("\n---- log of approvald %s ----\n%s" % (daemon.name,
                                                                        daemon.output()))
        return result

    # helpers

    def start(self, *names, listen="127.0.0.1:0", args=()):
        """Starts one approvald per name, all at once, and waits until each listens."""
        daemons = [Daemon(n, self.dsn, self.tokens_file, self.config_file, self.tmp, listen, args)
                   for n in names]
        self.daemons.extend(daemons)
        for d in daemons:
            d.wait_started()
        return daemons

    def client(self, daemon, who, timeout=30):
        from approvald_client import ApprovalClient
        c = ApprovalClient(daemon.target, self.tokens[who], timeout=timeout)
        self.clients.append(c)
        return c

    def effects(self):
        """approval id -> number of effects rows."""
        return {row[0]: int(row[1]) for row in
                psql("SELECT approval_id, count(*) FROM effects GROUP BY approval_id", self.dbname)}

    def row(self, approval_id):
        rows = psql("SELECT status, version FROM approvald.approvals WHERE id = '%s'" % approval_id,
                    self.dbname)
        return tuple(rows[0]) if rows else None

    def sleepers(self):
        """Backends of the test database that are running the pg_sleep of effect.slow."""
        return int(psql("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                        " AND pid <> pg_backend_pid() AND state = 'active'"
                        " AND query LIKE '%pg_sleep(3)%'", self.dbname)[0][0])

    def log_events(self, action_type, statuses=(), after=0):
        """The log's events of approvals of action_type, in id order, as printed by approvalctl
        watch --json: (event_id, type, approval id, status, version). statuses: lower-case
        statuses after the event (as the watch filter means them)."""
        where = " AND e.approval->>'status' IN (%s)" % ",".join(
            "'%s'" % s for s in statuses) if statuses else ""
        rows = psql("SELECT e.id, upper(e.type), e.approval_id, upper(e.approval->>'status'),"
                    " e.version FROM approvald.events e JOIN approvald.approvals a ON a.id = e.approval_id"
                    " WHERE a.action_type = '%s' AND e.id > %d%s ORDER BY e.id"
                    % (action_type, after, where), self.dbname)
        return [(int(i), "EVENT_TYPE_" + t, a, "APPROVAL_STATUS_" + st, int(v))
                for i, t, a, st, v in rows]

    @staticmethod
    def outcome(call):
        """('OK', approval) or (code name, ErrorInfo reason, message) of a call."""
        import grpc
        from approvald_client import error_info
        try:
            return ("OK", call())
        except grpc.RpcError as err:
            info = error_info(err)
            return (err.code().name, info.reason if info else None, err.details())

    def in_thread(self, fn):
        """Runs fn in a thread; returns (thread, result list that gets fn's outcome)."""
        result = []
        thread = threading.Thread(target=lambda: result.append(self.outcome(fn)), daemon=True)
        thread.start()
        return thread, result

    # tests

    def test_1_concurrent_approvals_across_replicas(self):
        import grpc
        from approvald_client import pb
        replicas = self.start(*["replica%d" % i for i in range(REPLICAS)])
        requesters = [self.client(r, "agent") for r in replicas]
        approvers = [self.client(replicas[i % REPLICAS], "r%d" % i) for i in range(APPROVERS)]

        # A watcher on replica 1. It starts "from now on", so probe until it is live: an
        # approval created through replica 2 shows up on it.
        stream = self.client(replicas[1], "agent").watch(action_type="effect.write", timeout=120)
        events, reader = harness.read_in_background(stream)
        probes = []
        deadline = time.time() + 15
        while True:
            probes.append(requesters[2].create("effect.write", summary="probe").id)
            seen = lambda: any(getattr(e, "approval", None) is not None and
                               e.approval.id in probes for e in events)
            try:
                wait_until(seen, 1, "the probe's CREATED event")
                break
            except (AssertionError, TimeoutError):
                if time.time() > deadline:
                    raise

        winners = {}  # approval id -> (approver index, replica index)
        for rnd in range(ROUNDS):
            approval = requesters[rnd % REPLICAS].create(
                "effect.write", summary="round %d" % rnd, action_data={"round": rnd})
            self.assertEqual((approval.status, approval.version), (pb.APPROVAL_STATUS_PENDING, 1))
            barrier = threading.Barrier(APPROVERS, timeout=30)
            results = [None] * APPROVERS

            def approve(i, approval_id=approval.id, barrier=barrier, results=results):
                try:
                    barrier.wait()
                except threading.BrokenBarrierError as err:
                    results[i] = ("BARRIER", None, repr(err))
                    return
                results[i] = self.outcome(lambda: approvers[i].approve(approval_id))
            threads = [threading.Thread(target=approve, args=(i,), daemon=True)
                       for i in range(APPROVERS)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=60)
            self.assertFalse(any(t.is_alive() for t in threads), "round %d hangs" % rnd)
            ok = [i for i, r in enumerate(results) if r[0] == "OK"]
            self.assertEqual(len(ok), 1, "round %d: %r" % (rnd, results))
            others = {r[:2] for i, r in enumerate(results) if i != ok[0]}
            self.assertEqual(others, {("FAILED_PRECONDITION", "ALREADY_PROCESSED")},
                             "round %d: %r" % (rnd, results))
            won = results[ok[0]][1]
            self.assertEqual((won.status, won.version, won.decided_by),
                             (pb.APPROVAL_STATUS_APPROVED, 2, "r%d" % ok[0]))
            winners[approval.id] = (ok[0], ok[0] % REPLICAS)

        # At least one approval decided through replica 2, whoever won the rounds.
        probe = probes[0]
        done = approvers[2].approve(probe)
        self.assertEqual(done.status, pb.APPROVAL_STATUS_APPROVED)
        winners[probe] = (2, 2)

        effects = self.effects()
        self.assertEqual({a: effects.get(a, 0) for a in winners}, {a: 1 for a in winners})
        wins = sorted(r for _, r in winners.values())
        sys.stderr.write("winning replica per approval: %s\n" % {
            r: wins.count(r) for r in range(REPLICAS)})

        def approved_events():
            return {e.approval.id: e for e in list(events)
                    if getattr(e, "type", None) == pb.EVENT_TYPE_APPROVED}
        wait_until(lambda: set(winners) <= set(approved_events()), 15,
                   "APPROVED events of all %d approvals on replica 1" % len(winners))
        stream.cancel()
        reader.join(timeout=10)
        got = approved_events()
        for approval_id, (approver, _) in winners.items():
            event = got[approval_id]
            self.assertEqual((event.actor, event.approval.decided_by, event.approval.version),
                             ("r%d" % approver, "r%d" % approver, 2))
        approved = [e.approval.id for e in events
                    if getattr(e, "type", None) == pb.EVENT_TYPE_APPROVED]
        self.assertEqual(len(approved), len(set(approved)), "an APPROVED event came twice")
        through_2 = {a for a, (_, r) in winners.items() if r == 2}
        self.assertIn(probe, through_2)
        self.assertLessEqual(through_2, set(got))  # decided on replica 2, seen on replica 1
        self.assertEqual(events[-1], grpc.StatusCode.CANCELLED)

    def test_2_kill_9_during_the_action(self):
        import grpc
        from approvald_client import pb
        (first,) = self.start("doomed")
        approval = self.client(first, "agent").create("effect.slow", summary="crash")
        approver = self.client(first, "r0")
        thread, result = self.in_thread(lambda: approver.approve(approval.id))
        wait_until(lambda: self.sleepers() >= 1, 10, "pg_sleep to run")
        first.proc.kill()
        self.assertEqual(first.proc.wait(timeout=10), -signal.SIGKILL)
        thread.join(timeout=30)
        self.assertFalse(thread.is_alive())
        self.assertEqual(result[0][0], grpc.StatusCode.UNAVAILABLE.name, result)
        # Nothing committed: still pending at version 1, no effect.
        self.assertEqual(self.row(approval.id), ("pending", "1"))
        self.assertEqual(self.effects().get(approval.id, 0), 0)

        (second,) = self.start("successor")
        self.assertEqual(self.client(second, "r1").get(approval.id).status,
                         pb.APPROVAL_STATUS_PENDING)
        # Waits for the dead replica's transaction to end (its backend notices the closed
        # socket after pg_sleep), then runs the action itself.
        done = self.client(second, "r1").approve(approval.id)
        self.assertEqual((done.status, done.version, done.decided_by),
                         (pb.APPROVAL_STATUS_APPROVED, 2, "r1"))
        self.assertEqual(self.effects().get(approval.id, 0), 1)
        self.assertEqual(self.row(approval.id), ("approved", "2"))

    def test_3_sigterm_lets_running_calls_finish(self):
        from approvald_client import pb
        (daemon,) = self.start("terminated")
        agent = self.client(daemon, "agent")
        ids = [agent.create("effect.slow", summary="slow %d" % i).id for i in range(5)]
        calls = [self.in_thread(lambda i=i: self.client(daemon, "r%d" % i).approve(ids[i]))
                 for i in range(5)]
        wait_until(lambda: self.sleepers() >= 5, 10, "5 pg_sleeps to run")
        daemon.proc.send_signal(signal.SIGTERM)
        for thread, _ in calls:
            thread.join(timeout=30)
            self.assertFalse(thread.is_alive())
        for i, (_, result) in enumerate(calls):
            self.assertEqual(result[0][0], "OK", result)
            approval = result[0][1]
            self.assertEqual((approval.id, approval.status, approval.decided_by),
                             (ids[i], pb.APPROVAL_STATUS_APPROVED, "r%d" % i))
        self.assertEqual(daemon.proc.wait(timeout=20), 0, daemon.output())
        self.assertIn("approvald stopped", daemon.output())
        effects = self.effects()
        self.assertEqual([effects.get(i, 0) for i in ids], [1] * 5)

    def test_4_two_sweepers_expire_each_approval_once(self):
        from approvald_client import pb
        count = 1000
        replicas = self.start("sweeper0", "sweeper1", args=("--expiry-interval=100ms",))
        agents = [self.client(r, "agent") for r in replicas]
        # Most approvals share one expire_time, so both sweepers find hundreds due at once and
        # compete for them (batches of 100, FOR UPDATE SKIP LOCKED). One created too close to
        # that moment (a slow machine) gets a 1 s ttl instead.
        due = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=4)

        def create(i):
            if datetime.datetime.now(datetime.timezone.utc) < due - datetime.timedelta(
                    seconds=0.5):
                return agents[i % 2].create("expiry.note", summary="expire %d" % i,
                                            expire_time=due)
            return agents[i % 2].create("expiry.note", summary="expire %d" % i, ttl=1)
        started = time.time()
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            created = list(pool.map(create, range(count)))
        late = sum(1 for a in created if abs(a.expire_time.ToMicroseconds() / 1e6 -
                                             due.timestamp()) > 0.001)
        sys.stderr.write("created %d in %.1fs (%d with a ttl of 1s) " % (
            count, time.time() - started, late))
        self.assertEqual({a.status for a in created}, {pb.APPROVAL_STATUS_PENDING})
        ids = {a.id for a in created}
        self.assertEqual(len(ids), count)

        def statuses():
            return dict(tuple(r) for r in psql(
                "SELECT status, count(*) FROM approvald.approvals WHERE action_type = 'expiry.note'"
                " GROUP BY status", self.dbname))
        wait_until(lambda: "pending" not in statuses(), 20, "no approval to be pending")
        self.assertEqual(statuses(), {"expired": str(count)})
        self.assertEqual(psql("SELECT count(*), count(DISTINCT id), min(version), max(version),"
                              " count(decided_at) FROM approvald.approvals"
                              " WHERE action_type = 'expiry.note'", self.dbname),
                         [[str(count), str(count), "2", "2", str(count)]])
        # Exactly one EXPIRED event per approval, by approvald, at version 2, with the approval
        # as expired; besides it only the CREATED event.
        rows = psql("SELECT e.type, count(*), count(DISTINCT e.approval_id),"
                    " count(*) FILTER (WHERE e.actor = 'approvald' AND e.version = 2"
                    " AND e.approval->>'status' = 'expired')"
                    " FROM approvald.events e JOIN approvald.approvals a ON a.id = e.approval_id"
                    " WHERE a.action_type = 'expiry.note' GROUP BY e.type ORDER BY 1", self.dbname)
        self.assertEqual(rows, [["created", str(count), str(count), "0"],
                                ["expired", str(count), str(count), str(count)]])
        expired_ids = {r[0] for r in psql(
            "SELECT approval_id FROM approvald.events WHERE type = 'expired'", self.dbname)}
        self.assertEqual(expired_ids & ids, ids)

        # Each sweep logs "expired N approvals": the two logs add up to exactly 1,000. Which
        # replica expired how many is up to timing; only the sum is checked. (Stopped with the
        # clients closed: an open channel delays approvald's exit by seconds.)
        for c in agents:
            c.close()
        for r in replicas:
            r.stop()
        split = {r.name: sum(int(n) for n in re.findall(r"expired (\d+) approvals", r.output()))
                 for r in replicas}
        sys.stderr.write("expired per replica: %s " % split)
        self.assertEqual(sum(split.values()), count, split)
        for r in replicas:
            self.assertNotIn("expiry sweep failed", r.output())

    def test_5_approvalctl_watch_resumes_across_a_restart(self):
        first, other = self.start("watched", "other")
        port = first.port

        def watch(name, *args):
            """Starts approvalctl watch; returns it and the paths of its stdout and stderr. The
            test reads those files by path, never through the child's file: a seek on a shared
            file description would move the child's write offset, and it would overwrite lines."""
            out_path = os.path.join(self.tmp, "watch-%s.out" % name)
            err_path = os.path.join(self.tmp, "watch-%s.err" % name)
            with open(out_path, "w") as out, open(err_path, "w") as err:
                proc = subprocess.Popen([APPROVALCTL, "--addr", first.target, "--token",
                                         self.tokens["agent"], "--json", "watch",
                                         "--type", "watch.note", *args],
                                        stdout=out, stderr=err)
            self.addCleanup(lambda: (proc.poll() is None and proc.kill(), proc.wait()))
            return proc, out_path, err_path

        def read(path):
            with open(path) as f:
                return f.read()

        def printed(out_path):
            """(event_id, type, approval id, status, version, action_type) of each line."""
            events = []
            for line in read(out_path).split("\n")[:-1]:  # not a line being written
                e = json.loads(line)
                a = e["approval"]
                events.append((int(e["event_id"]), e["type"], a["id"], a["status"],
                               int(a["version"]), a["action_type"]))
            return events

        # One watcher prints every event from now on; the other replays the whole log (--after
        # 1) but prints only the events after which the approval is approved.
        everything, everything_out, everything_err = watch("all")
        approved, approved_out, approved_err = watch("approved", "--after", "1",
                                                     "--status", "approved")
        # From now on: probe until the watcher is live. Probes are watch.note approvals too, so
        # what it printed from its first event on is checked like the rest.
        probe = self.client(first, "agent")
        deadline = time.time() + 15
        while not printed(everything_out):
            probe.create("watch.note", summary="probe")
            self.assertLess(time.time(), deadline, "approvalctl watch printed nothing")
            time.sleep(0.2)
        self.assertIsNone(everything.poll())
        self.assertIsNone(approved.poll())

        def changes(daemon, n, tag):
            """n approvals of watch.note through daemon: approved, rejected, cancelled and
            left pending in turn, and one effect.write (another type) that the watchers skip."""
            a, r = self.client(daemon, "agent"), self.client(daemon, "r0")
            ids = []
            for i in range(n):
                approval = a.create("watch.note", summary="%s %d" % (tag, i))
                ids.append(approval.id)
                if i % 4 == 0:
                    r.approve(approval.id)
                elif i % 4 == 1:
                    r.reject(approval.id, reason="no")
                elif i % 4 == 2:
                    a.cancel(approval.id)
            other_type = a.create("effect.write", summary="%s other type" % tag)
            self.client(daemon, "r1").reject(other_type.id, reason="not watched")
            return ids

        def wait_printed():
            """What the log says the watchers must print; waits (20 s at most) until they have
            printed as many lines. The caller compares."""
            first_id = printed(everything_out)[0][0]
            want_all = self.log_events("watch.note", after=first_id - 1)
            want_approved = self.log_events("watch.note", statuses=("approved",), after=1)
            deadline = time.time() + 20
            while time.time() < deadline and (len(printed(everything_out)) < len(want_all) or
                                              len(printed(approved_out)) < len(want_approved)):
                time.sleep(0.05)
            return want_all, want_approved

        before = changes(first, 8, "before")
        want_all, want_approved = wait_printed()
        self.assertEqual([e[:5] for e in printed(everything_out)], want_all)
        self.assertEqual([e[:5] for e in printed(approved_out)], want_approved)
        last_before = want_all[-1][0]

        # The watched replica stops; meanwhile the other one writes events to the log. (Its
        # clients are closed first: an open channel delays approvald's exit by seconds.)
        for c in self.clients:
            if c.target == first.target:
                c.close()
        first.stop()
        self.assertEqual(first.proc.returncode, 0, first.output())
        during = changes(other, 8, "during")
        self.client(other, "r2").approve(before[3])  # left pending before
        (restarted,) = self.start("restarted", listen="127.0.0.1:%d" % port)
        self.assertEqual(restarted.port, port)
        after = changes(restarted, 8, "after")
        want_all, want_approved = wait_printed()
        time.sleep(0.5)  # anything printed twice would show up by now

        got_all, got_approved = printed(everything_out), printed(approved_out)
        sys.stderr.write("printed %d events, %d approved " % (len(got_all), len(got_approved)))
        self.assertEqual({e[5] for e in got_all + got_approved}, {"watch.note"})
        ids = [e[0] for e in got_all]
        self.assertEqual(ids, sorted(set(ids)), "out of order or repeated")
        self.assertEqual([e[:5] for e in got_all], want_all)
        approved_ids = [e[0] for e in got_approved]
        self.assertEqual(approved_ids, sorted(set(approved_ids)), "out of order or repeated")
        self.assertEqual([e[:5] for e in got_approved], want_approved)
        self.assertEqual({e[3] for e in got_approved}, {"APPROVAL_STATUS_APPROVED"})
        self.assertEqual({e[1] for e in got_approved}, {"EVENT_TYPE_APPROVED"})
        # The events written while the watched replica was down came through the replay.
        self.assertEqual(collections.Counter(e[2] for e in got_all if e[2] in during),
                         {i: (2 if n % 4 != 3 else 1) for n, i in enumerate(during)})
        self.assertEqual(len([e for e in got_approved if e[2] in before + during + after]), 7)
        for err in (everything_err, approved_err):
            self.assertRegex(read(err), r"approvalctl: stream ended \(UNAVAILABLE[^\n]*\); "
                                        r"resuming after event \d+\n")
        self.assertIn("resuming after event %d\n" % last_before, read(everything_err))
        self.assertIsNone(everything.poll())
        self.assertIsNone(approved.poll())


if __name__ == "__main__":
    harness.run_tests()
