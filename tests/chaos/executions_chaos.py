#!/usr/bin/python3
"""Chaos for external executions: refunds run by worker processes through kill -9 of workers
and of one approvald replica; afterwards each refund was applied once at the provider, under
its execution's idempotency key, and each execution completed once.

usage: executions_chaos.py APPROVALD APPROVALCTL REPO_ROOT [--approvals N] [--workers W]
           [--replicas R] [--creators C] [--kill-every S] [--hold-ms M] [--timeout S]
           [--seed X]

On the PostgreSQL of APPROVALD_TEST_DSN (a fresh database, dropped afterwards) or, without it, a
private cluster (tests/e2e/harness.py). R approvald replicas (default 3) share the database, the
tokens and a config with one `handler: external` type, refund.provider (lease 3s, max_attempts
20, backoff 100ms to 1s). One fake payment provider (client/python/fake_payments.py) counts the
requests it gets and the refunds it applies. W worker processes (default 4), each on a replica
chosen round-robin, run the Python client's executions() loop: POST the refund with
Idempotency-Key = the execution's idempotency_key, hold it for a random 0 to M ms (default 200:
the rest of the work, a window in which a kill leaves the refund applied and the execution not
completed), complete with the provider's answer. C threads (default 4) create N refunds
(default 300, order ids 1..N) and approve them, spread over the replicas (retried on
UNAVAILABLE, made safe by an idempotency_key and a request_id). Meanwhile a random worker is
killed -9 about every S seconds (default 0.5; it is restarted at once) and one replica is
killed -9 and restarted on its port once, at a random point between 20% and 60% of the
executions done.

Then (within --timeout seconds, default 120 + N/5): every approval APPROVED with its execution
SUCCEEDED and the provider's answer as its result; the provider applied exactly one refund per
order, of its amount, under the key that the workers were given for its execution (one key per
execution for every attempt); no attempt was handed out twice; approvald.execution_attempts has
one 'succeeded' attempt per execution, never two; no worker or replica exited on its own, and
the workers stop on SIGTERM; some attempts were cut (a run that retried nothing proved
nothing). Prints a summary line; exit 0 only if every check passes.

The CI run (ctest ExecutionsChaosShort): --approvals 300 --workers 4. The long run:
--approvals 2000 --workers 8 (tests/README.md, Chaos).
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

import report  # tests/chaos, the folder of this script
from execution_workers import Workers

TYPE = "refund.provider"
RETRY_WINDOW = 60  # seconds a create or approve is retried at most
# UNKNOWN: a call cut by a kill -9 can end as "Stream removed"; the keys make retries safe.
RETRYABLE = ("UNAVAILABLE", "DEADLINE_EXCEEDED", "UNKNOWN")


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("approvald")
    p.add_argument("approvalctl")
    p.add_argument("root")
    p.add_argument("--approvals", type=int, default=300)
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--replicas", type=int, default=3)
    p.add_argument("--creators", type=int, default=4)
    p.add_argument("--kill-every", type=float, default=0.5, help="mean seconds between kills")
    p.add_argument("--hold-ms", type=float, default=200,
                   help="a worker holds an execution up to this long after the provider answered")
    p.add_argument("--timeout", type=float, default=None)
    p.add_argument("--seed", type=int, default=None)
    args = p.parse_args()
    if args.timeout is None:
        args.timeout = 120 + args.approvals / 5
    return args


def retried(call, what):
    """call() retried on RETRYABLE codes for up to RETRY_WINDOW seconds; (answer, retries)."""
    import grpc
    give_up, pause, retries = time.monotonic() + RETRY_WINDOW, 0.05, 0
    while True:
        try:
            return call(), retries
        except grpc.RpcError as err:
            if err.code().name not in RETRYABLE or time.monotonic() >= give_up:
                raise RuntimeError("%s: %s %s" % (what, err.code().name, err.details())) from err
        retries += 1
        time.sleep(pause)  # the replica is restarting: back off a little
        pause = min(pause * 2, 1.0)


class Creators:
    """Threads that create and approve refunds 1..n: order o created through replica o % R as
    agent, approved through the next one as alice."""

    def __init__(self, clients, n, threads, seed):
        self.clients, self.n, self.seed = clients, n, seed
        self.orders = iter(range(1, n + 1))
        self.lock = threading.Lock()
        self.created = {}   # order id -> (approval id, amount_cents)
        self.retries = 0
        self.errors = []
        self.threads = [threading.Thread(target=self.run, daemon=True) for _ in range(threads)]
        for t in self.threads:
            t.start()

    def run(self):
        from approvald_client import pb
        replicas = len(self.clients)
        try:
            while True:
                with self.lock:
                    order = next(self.orders, None)
                if order is None:
                    return
                amount = random.Random(self.seed * 100003 + order).randint(1, 100000)
                agent = self.clients[order % replicas]["agent"]
                alice = self.clients[(order + 1) % replicas]["alice"]
                a, r1 = retried(lambda: agent.create(
                    TYPE, {"order_id": order, "amount_cents": amount},
                    summary="refund order %d" % order, idempotency_key="order-%d" % order),
                    "create order %d" % order)
                approved, r2 = retried(lambda: alice.approve(
                    a.id, request_id="approve-order-%d" % order), "approve order %d" % order)
                if approved.status != pb.APPROVAL_STATUS_APPROVED:
                    raise RuntimeError("approve order %d answered %s" % (
                        order, pb.ApprovalStatus.Name(approved.status)))
                with self.lock:
                    self.created[order] = (a.id, amount)
                    self.retries += r1 + r2
        except Exception as err:  # reported by the main thread
            self.errors.append(err)

    def done(self):
        if self.errors:
            raise self.errors[0]
        return not any(t.is_alive() for t in self.threads)


def list_all(client):
    """Every refund.provider approval through ListApprovals, by id."""
    listed, page = {}, ""
    while True:
        resp, _ = retried(lambda: client.list(action_type=TYPE, page_size=500, page_token=page),
                          "list")
        listed.update((a.id, a) for a in resp.approvals)
        page = resp.next_page_token
        if not page:
            return listed


def check(n, creators, payments, listed, notes, db_rows):
    """[(name, offenders)]."""
    from approvald_client import pb, struct_to_dict
    refunds = payments.refunds()
    per_order = collections.Counter(r["order_id"] for r in refunds)
    refund_of = {r["order_id"]: r for r in refunds}
    keys = collections.defaultdict(set)    # execution id -> keys the workers were given
    claims = collections.Counter((x["execution_id"], x["attempt"]) for x in notes)
    for x in notes:
        keys[x["execution_id"]].add(x["key"])

    stuck, results, amounts, wrong_key = [], [], [], []
    for order, (approval_id, amount) in sorted(creators.created.items()):
        a = listed.get(approval_id)
        if a is None:
            stuck.append("order %d: approval %s not listed" % (order, approval_id))
            continue
        if (a.status, a.execution.state) != (pb.APPROVAL_STATUS_APPROVED,
                                             pb.EXECUTION_STATE_SUCCEEDED):
            stuck.append("order %d: %s, execution %s after %d attempts (%s)" % (
                order, pb.ApprovalStatus.Name(a.status),
                pb.ExecutionState.Name(a.execution.state), a.execution.attempts,
                a.execution.last_error or a.execution_error))
            continue
        refund = refund_of.get(order)
        if refund is None:
            continue  # reported below
        if struct_to_dict(a.execution_result) != refund:
            results.append("order %d: result %s, refund %s" % (
                order, struct_to_dict(a.execution_result), refund))
        if refund["amount_cents"] != amount:
            amounts.append("order %d: refunded %d, approved %d" % (
                order, refund["amount_cents"], amount))
        given = keys.get(a.execution.execution_id, set())
        if given != {refund["idempotency_key"]}:
            wrong_key.append("order %d: refund key %s, execution %s was given %s" % (
                order, refund["idempotency_key"], a.execution.execution_id, sorted(given)))
    not_once = ["order %s: %d refunds" % (o, c) for o, c in sorted(per_order.items()) if c != 1]
    not_once += ["order %d: no refund" % o for o in range(1, n + 1) if o not in per_order]
    return [
        ("approvals created", ["%d of %d" % (len(creators.created), n)]
         if len(creators.created) != n else []),
        ("not APPROVED + SUCCEEDED (stuck)", stuck),
        ("result unlike the provider's answer", results),
        ("orders not refunded exactly once", not_once),
        ("refunds of another amount", amounts),
        ("executions given several keys", ["%s: %s" % (e, sorted(k))
                                           for e, k in keys.items() if len(k) > 1]),
        ("refunds not under their execution's key", wrong_key),
        ("attempts handed out twice", ["%s attempt %d: %d workers" % (e, a, c)
                                       for (e, a), c in claims.items() if c > 1]),
        ("executions completed twice (SQL)", db_rows["twice"]),
        ("executions not succeeded (SQL)", db_rows["unfinished"]),
    ]


def main():
    args = parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    sys.path.insert(0, os.path.join(args.root, "tests", "e2e"))
    import harness

    # ctest ends a run that is too long with SIGTERM: clean up as on any other exit.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = time.monotonic()
    tmp = tempfile.mkdtemp(prefix="approvald-exechaos-")
    pg = payments = workers = None
    replicas, clients, cleanups = [], [], []
    try:
        server_dsn = os.environ.get("APPROVALD_TEST_DSN", "")
        if server_dsn:
            dbname = "approvald_exechaos_%s" % uuid.uuid4().hex[:12]
            admin = server_dsn + " dbname=postgres"
            harness.psql("CREATE DATABASE " + dbname, admin)
            cleanups.append(lambda: harness.psql(
                "DROP DATABASE IF EXISTS %s WITH (FORCE)" % dbname, admin))
            dsn = server_dsn + " dbname=" + dbname
        else:
            pg = harness.Postgres(tmp)
            dsn = pg.create_database("exechaos")
        config = os.path.join(tmp, "approvald.yaml")
        with open(config, "w") as f:
            f.write(harness.refund_provider_config(lease="3s", max_attempts=20))
        tokens_file = os.path.join(tmp, "tokens")
        tokens = harness.write_tokens(args.approvalctl, tokens_file,
                                     harness.REFUND_PRINCIPALS)
        gen = harness.use_python_client(args.root, tmp)
        import fake_payments
        from approvald_client import ApprovalClient

        for i in range(args.replicas):
            replicas.append(harness.Approvald(args.approvald, dsn, tokens_file, config, tmp,
                                              name="replica%d" % i, args=("--pool-size=8",)))
        payments = fake_payments.serve(0)
        workers = Workers(args.root, tmp, replicas, payments.url, tokens["worker"], gen,
                          args.hold_ms)
        for slot in range(args.workers):
            workers.start(slot)
        clients = [{who: ApprovalClient(r.target, tokens[who]) for who in ("agent", "alice")}
                   for r in replicas]
        creators = Creators(clients, args.approvals, args.creators, seed)

        replica_at = rng.uniform(0.2, 0.6) * args.approvals
        restarted = []                 # (replica name, seconds the restart took)
        own_exits = []                 # replicas found exited before their kill
        next_kill = [time.monotonic() + rng.uniform(0.25, 1.75) * args.kill_every]

        def succeeded():
            return int(harness.psql("SELECT count(*) FROM approvald.executions"
                                    " WHERE state = 'succeeded'", dsn)[0][0])

        def chaos_step():
            """One look at the run: the kills that are due; True once every execution
            succeeded."""
            workers.reap()
            if time.monotonic() >= next_kill[0]:
                workers.kill9(rng.randrange(args.workers))
                next_kill[0] = time.monotonic() + rng.uniform(0.25, 1.75) * args.kill_every
            done = succeeded()
            if not restarted and done >= replica_at:
                replica = rng.choice(replicas)
                if replica.proc.poll() is not None:
                    own_exits.append("%s: exit %s" % (replica.name, replica.proc.returncode))
                began = time.monotonic()
                replica.restart()
                restarted.append((replica.name, time.monotonic() - began))
            return creators.done() and done == args.approvals

        try:
            harness.wait_until(chaos_step, args.timeout,
                               "%d executions to succeed" % args.approvals, interval=0.25)
            timed_out = []
        except TimeoutError as err:  # the checks below say which are stuck
            timed_out = [str(err)]
        elapsed = time.monotonic() - started
        workers.stop()
        own_exits += ["%s: exit %s" % (r.name, r.proc.returncode) for r in replicas
                      if r.proc.poll() is not None]

        listed = list_all(clients[0]["alice"])
        db_rows = {
            "twice": ["%s: %s succeeded attempts" % tuple(r) for r in harness.psql(
                "SELECT execution_id, count(*) FROM approvald.execution_attempts"
                " WHERE outcome = 'succeeded' GROUP BY 1 HAVING count(*) > 1", dsn)],
            "unfinished": ["%s: %s" % tuple(r) for r in harness.psql(
                "SELECT id, state FROM approvald.executions WHERE state <> 'succeeded'", dsn)]}
        executions = int(harness.psql("SELECT count(*) FROM approvald.executions", dsn)[0][0])
        if executions != args.approvals:
            db_rows["unfinished"].append("%d executions for %d approvals" % (executions,
                                                                           args.approvals))
        outcomes = dict(harness.psql("SELECT coalesce(outcome, 'open'), count(*) FROM"
                                     " approvald.execution_attempts GROUP BY 1 ORDER BY 1", dsn))
        retried_executions = harness.psql("SELECT count(*) FROM approvald.executions"
                                          " WHERE attempt > 1", dsn)[0][0]
        notes = workers.attempts()
        results = check(args.approvals, creators, payments, listed, notes, db_rows)
        results += [("workers that exited on their own",
                     ["worker %d: exit %s" % e for e in workers.exits]),
                    ("workers that ignored SIGTERM", ["worker %d" % s for s in workers.no_stop]),
                    ("replicas that exited on their own", own_exits),
                    ("the replica restart", [] if restarted else ["it never happened"]),
                    ("every execution succeeded in time", timed_out),
                    # Else the run proved nothing: the faults must have cut some attempts.
                    ("faults that cut running attempts",
                     [] if workers.killed and int(retried_executions) else
                     ["%d workers killed, %s executions retried" % (workers.killed,
                                                                   retried_executions)])]

        statuses = payments.statuses()
        print("executions chaos: %d approvals, %d workers, %d replicas, %d creators, seed %d;"
              " %s restarted (%s s) at %d executions done"
              % (args.approvals, args.workers, args.replicas, args.creators, seed,
                 ", ".join(n for n, _ in restarted) or "nothing",
                 ", ".join("%.1f" % t for _, t in restarted) or "-", int(replica_at)))
        print("  provider answers: %s; attempts by outcome: %s; executions retried: %s;"
              " attempts noted by workers: %d; create/approve retries: %d"
              % (", ".join("%s %d" % kv for kv in sorted(statuses.items())),
                 ", ".join("%s %s" % kv for kv in outcomes.items()), retried_executions,
                 len(notes), creators.retries))
        failed = report.print_checks(results, 42)
        print("summary: raw provider requests %d, applied effects %d, attempts total %d,"
              " workers killed %d, replica restarts %d, elapsed %.1f s"
              % (payments.requests(), len(payments.refunds()),
                 sum(int(v) for v in outcomes.values()), workers.killed, len(restarted),
                 elapsed))
        print("executions chaos: %s" % ("FAILED" if failed else "passed"))
        if failed:
            report.dump_logs(tmp)
        return 1 if failed else 0
    except BaseException:
        report.dump_logs(tmp)
        raise
    finally:
        for by_who in clients:
            for c in by_who.values():
                c.close()
        if workers:
            workers.kill_all()
        for r in replicas:
            r.stop(grace=10)
        if payments:
            payments.close()
        for cleanup in cleanups:
            cleanup()
        if pg:
            pg.stop("immediate")
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
