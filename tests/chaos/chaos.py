#!/usr/bin/python3
"""Chaos: racing decisions while approvald is killed (-9) and PostgreSQL crash-restarted, then
SQL checks that every action ran exactly once and that no approval was decided twice.

usage: chaos.py APPROVALD APPROVALCTL REPO_ROOT [--kills N] [--pg-restarts M] [--seconds S]
                [--workers W] [--seed X]

Runs its own PostgreSQL (tests/e2e/harness.py) on 127.0.0.1, a fresh database with a table
`effects` and two action types that insert one effects row per execution: effect.write (one
approver) and effect.quorum (required_approvals: 2). For S seconds W workers each create an
approval (as `agent`, or as `boss` who is requester and approver), then fire at once, from one
thread each: Approve by 2-4 approvers, often a Reject, a CancelApproval by the requester and a
second Approve by one of the approvers; some calls carry a request_id. Afterwards one principal
that was answered OK sometimes calls again: with the same request_id (a replay) or without one.
Every call has a 5 s deadline and is retried on UNAVAILABLE / DEADLINE_EXCEEDED (a retry keeps
its request_id). Meanwhile N kill -9 of approvald (restarted on its port at once) and M
`pg_ctl -m immediate` restarts are spread over the run. Exit 0 only if every check passes.
"""

import argparse
import collections
import os
import random
import shutil
import signal
import sys
import tempfile
import threading
import time
import uuid

import decision_checks  # tests/chaos, the folder of this script
import report

CALL_DEADLINE = 5      # seconds, every call
RETRY_WINDOW = 60      # seconds a call is retried at most (and 200 attempts)
APPROVERS = ["alice", "bob", "carol", "dave", "boss"]
PRINCIPALS = {"agent": "requester", "alice": "approver", "bob": "approver", "carol": "approver",
              "dave": "approver", "boss": "approver,requester"}

CONFIG = """\
version: 1
action_types:
  - name: effect.write
    description: One approver; writes one effects row.
    handler: sql
    requester_roles: [requester]
    approver_roles: [approver]
    sql:
      - statement: INSERT INTO effects (approval_id) VALUES (:approval_id)
        expect_rows: {exactly: 1}
  - name: effect.quorum
    description: Two approvers; writes one effects row.
    handler: sql
    requester_roles: [requester]
    approver_roles: [approver]
    required_approvals: 2
    sql:
      - statement: INSERT INTO effects (approval_id) VALUES (:approval_id)
        expect_rows: {exactly: 1}
"""

# One OK answer of a decision call.
Answer = collections.namedtuple(
    "Answer", "approval_id action_type method principal request_id status version decided_by")


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("approvald")
    p.add_argument("approvalctl")
    p.add_argument("root")
    p.add_argument("--kills", type=int, default=3)
    p.add_argument("--pg-restarts", type=int, default=1)
    p.add_argument("--seconds", type=float, default=45)
    p.add_argument("--workers", type=int, default=6)
    p.add_argument("--seed", type=int, default=None)
    return p.parse_args()


class Load:
    """The racing load through one gRPC channel; records every OK answer."""

    def __init__(self, target, tokens, seconds, workers, seed):
        import grpc
        from approvals.v1 import approvals_pb2, approvals_pb2_grpc
        self.grpc, self.pb = grpc, approvals_pb2
        self.channel = grpc.insecure_channel(target, options=[
            ("grpc.enable_http_proxy", 0),
            ("grpc.initial_reconnect_backoff_ms", 100),
            ("grpc.min_reconnect_backoff_ms", 100),
            ("grpc.max_reconnect_backoff_ms", 1000)])
        self.stub = approvals_pb2_grpc.ApprovalServiceStub(self.channel)
        self.tokens, self.seconds, self.workers, self.seed = tokens, seconds, workers, seed
        self.lock = threading.Lock()
        self.answers = []             # Answer per OK decision
        self.created = {}             # approval id -> action type
        self.calls = collections.Counter()     # method -> calls (a retry is the same call)
        self.attempts = 0
        self.codes = collections.Counter()     # final code of each decision call
        self.hung = 0                 # decision threads that never returned

    def call(self, method, who, request, rng):
        """('OK', response) or (code name, None); retried on UNAVAILABLE/DEADLINE_EXCEEDED."""
        metadata = (("authorization", "Bearer " + self.tokens[who]),)
        give_up = time.monotonic() + RETRY_WINDOW
        retryable = (self.grpc.StatusCode.UNAVAILABLE, self.grpc.StatusCode.DEADLINE_EXCEEDED)
        with self.lock:
            self.calls[method] += 1
        for attempt in range(1, 201):
            with self.lock:
                self.attempts += 1
            try:
                return "OK", getattr(self.stub, method)(request, metadata=metadata,
                                                        timeout=CALL_DEADLINE,
                                                        wait_for_ready=True)
            except self.grpc.RpcError as err:
                if err.code() not in retryable or time.monotonic() >= give_up:
                    return err.code().name, None
            except ValueError:  # the channel was closed: the run is being ended
                return "CLOSED", None
            time.sleep(min(0.05 * attempt, 0.5) * rng.uniform(0.5, 1.0))  # retry backoff
        return "GAVE_UP", None

    def decide(self, approval_id, action_type, method, who, request_id, rng):
        """One decision call; returns its Answer if it was answered OK."""
        pb = self.pb
        if method == "Approve":
            request = pb.ApproveRequest(id=approval_id, request_id=request_id or "")
        elif method == "Reject":
            request = pb.RejectRequest(id=approval_id, reason="chaos", request_id=request_id or "")
        else:
            request = pb.CancelApprovalRequest(id=approval_id, request_id=request_id or "")
        code, resp = self.call(method, who, request, rng)
        with self.lock:
            self.codes[code] += 1
        if code != "OK":
            return None
        status = pb.ApprovalStatus.Name(resp.status)[len("APPROVAL_STATUS_"):].lower()
        answer = Answer(approval_id, action_type, method, who, request_id, status, resp.version,
                        resp.decided_by)
        with self.lock:
            self.answers.append(answer)
        return answer

    def round(self, rng):
        pb = self.pb
        creator = rng.choice(["agent", "agent", "agent", "boss"])
        action_type = "effect.quorum" if rng.random() < 0.3 else "effect.write"
        # The idempotency key makes a retried create return the approval the first try made.
        code, approval = self.call("CreateApproval", creator, pb.CreateApprovalRequest(
            action_type=action_type, summary="chaos", idempotency_key=uuid.uuid4().hex), rng)
        if code != "OK":
            return
        with self.lock:
            self.created[approval.id] = action_type
        eligible = [a for a in APPROVERS if a != creator]  # nobody approves their own
        approvers = rng.sample(eligible, rng.randint(2, 4))
        calls = [("Approve", a, self.maybe_request_id(rng)) for a in approvers]
        if rng.random() < 0.7:
            calls.append(("Reject", rng.choice(eligible), self.maybe_request_id(rng)))
        if rng.random() < 0.5:
            calls.append(("CancelApproval", creator, self.maybe_request_id(rng)))
        if rng.random() < 0.3:  # the same approver twice at once, no request_id
            calls.append(("Approve", rng.choice(approvers), None))
        barrier = threading.Barrier(len(calls))
        results = []

        def fire(method, who, request_id, seed):
            try:
                barrier.wait(timeout=30)
            except threading.BrokenBarrierError:
                pass  # still call: the race is only less tight
            results.append(self.decide(approval.id, action_type, method, who, request_id,
                                       random.Random(seed)))
        threads = [threading.Thread(target=fire, args=(*c, rng.random()), daemon=True)
                   for c in calls]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=RETRY_WINDOW + 2 * CALL_DEADLINE + 30)
        with self.lock:
            self.hung += sum(t.is_alive() for t in threads)
        ok = [a for a in results if a is not None]
        if ok and rng.random() < 0.3:
            # A later call of someone who was answered OK: a replay of that call (same
            # request_id) or, without a request_id, a new call that must not be answered OK
            # for a decision already made.
            first = rng.choice(ok)
            replay = first.request_id if first.request_id and rng.random() < 0.5 else None
            self.decide(approval.id, action_type, first.method, first.principal, replay, rng)

    @staticmethod
    def maybe_request_id(rng):
        return "chaos-" + uuid.uuid4().hex if rng.random() < 0.5 else None

    def run(self, stop):
        """W workers for `seconds` (or until stop is set); returns when all have finished."""
        end = time.monotonic() + self.seconds

        def work(n):
            rng = random.Random(self.seed * 1000 + n)
            while time.monotonic() < end and not stop.is_set():
                self.round(rng)
        workers = [threading.Thread(target=work, args=(n,), daemon=True)
                   for n in range(self.workers)]
        for w in workers:
            w.start()
        for w in workers:
            w.join(timeout=self.seconds + 2 * (RETRY_WINDOW + 2 * CALL_DEADLINE + 30) + 60)
        self.hung += sum(w.is_alive() for w in workers)


class Chaos:
    """N kill -9 of approvald and M PostgreSQL crash restarts, in random order, spread evenly
    over the run (each at a jittered moment)."""

    def __init__(self, daemon, pg, kills, pg_restarts, seconds, rng):
        self.daemon, self.pg = daemon, pg
        plan = ["kill"] * kills + ["pg"] * pg_restarts
        rng.shuffle(plan)
        slot = seconds / (len(plan) + 1)
        self.plan = [(slot * (i + 1) + rng.uniform(-0.3, 0.3) * slot, what)
                     for i, what in enumerate(plan)]
        self.done = []            # (what, seconds it took)
        self.unexpected_exits = []  # approvald exit codes found when it was to be killed
        self.error = None

    def run(self, stop):
        start = time.monotonic()
        try:
            for at, what in self.plan:
                if stop.wait(timeout=max(0.0, start + at - time.monotonic())):
                    return
                began = time.monotonic()
                if what == "kill":
                    code = self.daemon.proc.poll()
                    if code is not None:
                        self.unexpected_exits.append(code)
                    self.daemon.restart()
                else:
                    self.pg.crash_restart()
                self.done.append((what, time.monotonic() - began))
        except Exception as err:  # reported by main; the load stops
            self.error = err
            stop.set()


def main():
    args = parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    sys.path.insert(0, os.path.join(args.root, "tests", "e2e"))
    import harness

    # ctest and tests/chaos/run end a run with SIGTERM: clean up as on any other exit.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = time.monotonic()
    tmp = tempfile.mkdtemp(prefix="approvald-chaos-")
    pg = daemon = load = chaos_thread = None
    stop = threading.Event()  # set: no new rounds, no more faults
    try:
        pg = harness.Postgres(tmp)
        dsn = pg.create_database("chaos")
        harness.psql("CREATE TABLE effects (approval_id uuid NOT NULL,"
                     " at timestamptz DEFAULT now())", dsn)
        config = os.path.join(tmp, "approvald.yaml")
        with open(config, "w") as f:
            f.write(CONFIG)
        tokens_file = os.path.join(tmp, "tokens")
        tokens = harness.write_tokens(args.approvalctl, tokens_file, PRINCIPALS)
        gen = os.path.join(tmp, "gen")
        os.mkdir(gen)
        harness.generate_stubs(args.root, gen)
        daemon = harness.Approvald(args.approvald, dsn, tokens_file, config, tmp,
                                   args=("--pool-size=16", "--shutdown-grace=5s"))

        load = Load(daemon.target, tokens, args.seconds, args.workers, seed)
        chaos = Chaos(daemon, pg, args.kills, args.pg_restarts, args.seconds, random.Random(seed))
        chaos_thread = threading.Thread(target=chaos.run, args=(stop,), daemon=True)
        chaos_thread.start()
        load.run(stop)
        stop.set()
        chaos_thread.join(timeout=180)
        if chaos_thread.is_alive() or chaos.error:
            raise RuntimeError("the chaos thread failed: %r" % (chaos.error,))
        load.channel.close()
        if daemon.proc.poll() is not None:
            chaos.unexpected_exits.append(daemon.proc.returncode)
            daemon.start()  # for the record: the checks read the database
        elapsed = time.monotonic() - started

        def printable(a):
            return "%s %s rid=%s -> %s v%d by %s" % (a.method, a.principal, a.request_id,
                                                    a.status, a.version, a.decided_by or "-")
        results = decision_checks.check(dsn, harness.psql, load, printable)
        results += [("approvald exits of its own", ["exit %s" % c for c in
                                                     chaos.unexpected_exits]),
                    ("calls that never returned", ["%d threads" % load.hung] if load.hung else [])]
        statuses = dict(harness.psql("SELECT status, count(*) FROM approvald.approvals"
                                     " GROUP BY 1 ORDER BY 1", dsn))
        effects_rows = harness.psql("SELECT count(*) FROM effects", dsn)[0][0]

        kills = sum(1 for w, _ in chaos.done if w == "kill")
        restarts = [t for w, t in chaos.done if w == "pg"]
        print("chaos: %.0f s load, %d workers, seed %d; %d kill -9 of approvald, %d PostgreSQL"
              " crash restarts (%s s); run %.0f s"
              % (args.seconds, args.workers, seed, kills, len(restarts),
                 ", ".join("%.1f" % t for t in restarts) or "-", elapsed))
        print("  %-38s %7d  (%s)" % ("approvals created", len(load.created),
                                     ", ".join("%s %s" % kv for kv in statuses.items())))
        decisions = sum(n for m, n in load.calls.items() if m != "CreateApproval")
        print("  %-38s %7d  (%d attempts in all, creates included)"
              % ("decision calls sent", decisions, load.attempts))
        print("  %-38s %7d  (decision calls ended: %s)" % ("OK answers", len(load.answers),
                                                          ", ".join("%s %d" % kv for kv in
                                                                    load.codes.most_common())))
        print("  %-38s %7s" % ("effects rows", effects_rows))
        failed = report.print_checks(results, 38)
        print("chaos: %s" % ("FAILED" if failed else "passed"))
        return 1 if failed else 0
    except BaseException:
        report.dump_logs(tmp)
        raise
    finally:
        # The chaos thread first: it may be restarting approvald or PostgreSQL right now.
        stop.set()
        if chaos_thread:
            chaos_thread.join(timeout=180)
        if load:
            load.channel.close()  # calls still in flight end as CLOSED
        if daemon:
            daemon.stop(grace=10)
        if pg:
            pg.stop("immediate")
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
