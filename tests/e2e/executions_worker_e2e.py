#!/usr/bin/python3
"""External executions (`handler: external`) with the Python client's worker loop.

approvald runs with an action type, refund.provider, that executors run: approved refunds are
claimed by workers that call client/python/fake_payments.py the way
client/python/example_worker.py does. 20 refunds run by 4 worker threads are each applied once
at the provider under their execution's idempotency key; an attempt that raises after calling
the provider is retried with the same key and the provider applies it once; a lease that expires
goes to another worker, and the first worker's stale token is FAILED_PRECONDITION / LEASE_LOST;
example_worker.py --once fails a 5xx retryable and a 4xx for good; `approvalctl work` runs a
program per execution with concurrency 3 through a kill -9 and restart of approvald: each refund
is applied once and recorded with the program's output, and the program's fatal exit code fails
an approval for good.

usage: executions_worker_e2e.py APPROVALD APPROVALCTL REPO_ROOT   (APPROVALD_TEST_DSN must be set)
"""

import itertools
import json
import os
import subprocess
import sys
import threading
import time

APPROVALD, APPROVALCTL, ROOT = sys.argv[1:4]
WORKER = os.path.join(ROOT, "client", "python", "example_worker.py")
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
import harness  # noqa: E402

TYPE = "refund.provider"
_order_ids = itertools.count(1000)

PROGRAM = os.path.join(ROOT, "tests", "e2e", "refund_program.py")


class ExecutionsWorkerTest(harness.DatabaseTestCase):
    @classmethod
    def setUpClass(cls):
        cls.set_up_database("execworker", APPROVALCTL, harness.REFUND_PRINCIPALS)
        harness.use_python_client(ROOT, cls.tmp)  # also puts client/python on sys.path
        config = os.path.join(cls.tmp, "approvald.yaml")
        with open(config, "w") as f:
            f.write(harness.refund_provider_config())
        cls.daemon = harness.Approvald(APPROVALD, cls.dsn, cls.tokens_file, config, cls.tmp)
        cls.addClassCleanup(cls.daemon.stop)
        cls.target = cls.daemon.target  # restart() keeps the port

    def setUp(self):
        import fake_payments
        self.payments = fake_payments.serve(0)
        self.addCleanup(self.payments.close)
        self.alice = self.client("alice")
        self.addCleanup(self.alice.close)

    def client(self, who, **kw):
        from approvald_client import ApprovalClient
        return ApprovalClient(self.target, self.tokens[who], **kw)

    def executions(self, client, timeout=30):
        """client.executions() of refund.provider that ends after timeout seconds (so that a
        test waiting for an execution that never comes fails instead of hanging)."""
        stop = threading.Event()
        timer = threading.Timer(timeout, stop.set)
        timer.start()
        self.addCleanup(timer.cancel)
        return client.executions(TYPE, wait=5, stop=stop)

    def approved_refunds(self, n, amount_cents=500):
        """n refund.provider approvals, created by agent and approved by alice."""
        from approvald_client import pb
        approvals = []
        with self.client("agent") as agent:
            for _ in range(n):
                order_id = next(_order_ids)
                a = agent.create(TYPE, {"order_id": order_id, "amount_cents": amount_cents},
                                 summary="refund order %d" % order_id)
                approved = self.alice.approve(a.id)
                self.assertEqual(approved.status, pb.APPROVAL_STATUS_APPROVED)
                self.assertTrue(approved.execution.execution_id)
                self.assertFalse(approved.HasField("execute_time"))
                approvals.append(approved)
        return approvals

    def assert_succeeded(self, approval_id, attempts):
        """The approval, whose execution succeeded after `attempts` attempts."""
        from approvald_client import pb
        got = self.alice.get(approval_id)
        self.assertEqual(got.status, pb.APPROVAL_STATUS_APPROVED)
        self.assertEqual(got.execution.state, pb.EXECUTION_STATE_SUCCEEDED,
                         pb.ExecutionState.Name(got.execution.state))
        self.assertEqual(got.execution.attempts, attempts)
        self.assertTrue(got.HasField("execute_time"))
        self.assertEqual(got.execution_error, "")
        return got

    def test_1_four_workers_run_twenty_refunds_once_each(self):
        import example_worker
        from approvald_client import pb, struct_to_dict
        approvals = self.approved_refunds(20)
        for a in approvals:
            self.assertEqual(a.execution.state, pb.EXECUTION_STATE_QUEUED)
        lock = threading.Lock()
        handled, errors = [], []
        stop = threading.Event()

        def work(name):
            try:
                with self.client("worker") as client:
                    for ex in client.executions(TYPE, lease=5, wait=1, stop=stop):
                        with ex:
                            completed, line = example_worker.refund(ex, self.payments.url)
                        with lock:
                            handled.append((name, ex.approval.id, ex.attempt,
                                            ex.idempotency_key, completed, line))
            except BaseException as err:  # reported by the main thread
                errors.append(err)

        workers = [threading.Thread(target=work, args=("w%d" % i,), daemon=True)
                   for i in range(4)]
        for w in workers:
            w.start()
        try:
            ids = [a.id for a in approvals]

            def all_succeeded():
                if errors:
                    raise errors[0]
                return all(self.alice.get(i).execution.state == pb.EXECUTION_STATE_SUCCEEDED
                           for i in ids)
            harness.wait_until(all_succeeded, 60, "20 executions to succeed", interval=0.25)
        finally:
            stop.set()
            for w in workers:
                w.join(timeout=30)
        self.assertEqual(errors, [])
        self.assertFalse(any(w.is_alive() for w in workers), "a worker did not stop")
        print("handled per worker: %s" % {n: sum(1 for h in handled if h[0] == n)
                                          for n in ("w0", "w1", "w2", "w3")})

        # Each approval was handled once, by one attempt that completed.
        self.assertEqual(sorted(h[1] for h in handled), sorted(ids))
        for name, approval_id, attempt, key, completed, line in handled:
            self.assertTrue(completed, line)
            self.assertEqual(attempt, 1, line)
        key_of = {h[1]: h[3] for h in handled}
        self.assertEqual(len(set(key_of.values())), 20)

        # The provider applied 20 refunds, each under its execution's idempotency key, and the
        # approval records the provider's answer as its result.
        refunds = self.payments.refunds()
        self.assertEqual(len(refunds), 20)
        by_order = {r["order_id"]: r for r in refunds}
        for a in approvals:
            got = self.assert_succeeded(a.id, attempts=1)
            refund = by_order[int(a.action_data["order_id"])]
            self.assertEqual(refund["idempotency_key"], key_of[a.id])
            self.assertEqual(refund["amount_cents"], 500)
            self.assertEqual(struct_to_dict(got.execution_result), refund)

    def test_2_an_attempt_that_raises_is_retried_with_the_same_key(self):
        import example_worker
        from approvald_client import pb
        a = self.approved_refunds(1)[0]
        with self.client("worker") as client:
            # The first attempt calls the provider, then the worker dies before complete().
            with self.assertRaises(RuntimeError):
                for ex in self.executions(client):
                    first = ex
                    with ex:
                        status, _ = example_worker.post_refund(
                            self.payments.url, ex.action_data, ex.idempotency_key)
                        self.assertEqual(status, 201)
                        raise RuntimeError("worker crashed after the refund")
            self.assertEqual((first.approval.id, first.attempt), (a.id, 1))
            got = self.alice.get(a.id)
            self.assertEqual(got.execution.state, pb.EXECUTION_STATE_QUEUED)
            self.assertEqual(got.execution.attempts, 1)
            self.assertIn("RuntimeError: worker crashed after the refund",
                          got.execution.last_error)

            # Due again after the backoff: attempt 2, the same key, so the provider answers the
            # refund it already made.
            for ex in self.executions(client):
                self.assertEqual((ex.approval.id, ex.execution_id, ex.attempt),
                                 (a.id, first.execution_id, 2))
                self.assertEqual(ex.idempotency_key, first.idempotency_key)
                with ex:
                    completed, line = example_worker.refund(ex, self.payments.url)
                self.assertTrue(completed, line)
                self.assertIn("(200)", line)
                break
            else:
                self.fail("the failed attempt was not retried")
        self.assert_succeeded(a.id, attempts=2)
        refunds = self.payments.refunds()
        self.assertEqual([r["idempotency_key"] for r in refunds], [first.idempotency_key])

    def test_3_an_expired_lease_goes_to_another_worker(self):
        import grpc
        from approvald_client import error_info, pb, struct_to_dict
        a = self.approved_refunds(1)[0]
        with self.client("worker") as first, self.client("worker") as second:
            claimed = first.claim(TYPE, wait=10)  # the type's lease: 5 s, never extended
            self.assertEqual(len(claimed), 1)
            e1 = claimed[0]
            self.assertEqual((e1.approval.id, e1.attempt, e1.max_attempts, e1.state),
                             (a.id, 1, 3, pb.EXECUTION_STATE_RUNNING))
            self.assertTrue(e1.lease_token)
            self.assertEqual(e1.approval.action_data["order_id"], a.action_data["order_id"])
            lease_end = e1.lease_expire_time.ToNanoseconds() / 1e9
            self.assertGreater(lease_end - time.time(), 3)
            self.assertLess(lease_end - time.time(), 6)
            running = self.alice.get(a.id).execution
            self.assertEqual((running.state, running.lease_holder, running.attempts),
                             (pb.EXECUTION_STATE_RUNNING, "worker", 1))

            # Nobody else gets it while the lease lasts.
            self.assertEqual(second.claim(TYPE, wait=1), [])
            claimed = harness.wait_until(lambda: second.claim(TYPE, wait=5), 30,
                                         "the execution of the expired lease")
            self.assertGreater(time.time(), lease_end - 0.5)  # a lease is not cut short
            self.assertEqual(len(claimed), 1)
            e2 = claimed[0]
            self.assertEqual((e2.execution_id, e2.attempt, e2.idempotency_key),
                             (e1.execution_id, 2, e1.idempotency_key))
            self.assertNotEqual(e2.lease_token, e1.lease_token)

            # The first worker's token is stale: nothing it sends changes the execution.
            for call in (lambda: first.complete(e1, {"by": "first"}),
                         lambda: first.extend_lease(e1),
                         lambda: first.fail(e1, "too late", retryable=False)):
                with self.assertRaises(grpc.RpcError) as err:
                    call()
                self.assertEqual(err.exception.code(), grpc.StatusCode.FAILED_PRECONDITION)
                info = error_info(err.exception)
                self.assertIsNotNone(info)
                self.assertEqual((info.reason, info.domain), ("LEASE_LOST", "approvald"))

            self.assertEqual(second.extend_lease(e2).state, pb.EXECUTION_STATE_RUNNING)
            done = second.complete(e2, {"by": "second"})
            self.assertEqual(done.state, pb.EXECUTION_STATE_SUCCEEDED)
            # A retried completion with the same token answers the same.
            self.assertEqual(second.complete(e2, {"by": "second"}).state,
                             pb.EXECUTION_STATE_SUCCEEDED)
            with self.assertRaises(grpc.RpcError) as err:
                first.complete(e1, {"by": "first"})
            self.assertEqual(error_info(err.exception).reason, "LEASE_LOST")
        got = self.assert_succeeded(a.id, attempts=2)
        self.assertEqual(struct_to_dict(got.execution_result), {"by": "second"})

    def test_4_example_worker_script(self):
        from approvald_client import pb
        env = dict(os.environ, APPROVALD_TOKEN=self.tokens["worker"])

        def run_once():
            return subprocess.run(["/usr/bin/python3", WORKER, "--addr", self.target,
                                   "--payments-url", self.payments.url, "--wait", "10", "--once"],
                                  capture_output=True, text=True, env=env, timeout=60)

        # A 5xx fails the attempt retryable; the next run completes attempt 2.
        a = self.approved_refunds(1)[0]
        self.payments.fail_next(503)
        run = run_once()
        self.assertEqual(run.returncode, 1, run.stdout + run.stderr)
        self.assertRegex(run.stdout, r"attempt 1/3: failed \(retryable\): payments answered 503")
        run = run_once()
        self.assertEqual(run.returncode, 0, run.stdout + run.stderr)
        self.assertRegex(run.stdout, r"attempt 2/3: completed: refund re_1 \(201\)")
        self.assert_succeeded(a.id, attempts=2)

        # A 4xx (the provider refuses an amount of 0) fails it for good: the approval FAILED.
        b = self.approved_refunds(1, amount_cents=0)[0]
        run = run_once()
        self.assertEqual(run.returncode, 1, run.stdout + run.stderr)
        self.assertRegex(run.stdout, r"attempt 1/3: failed \(for good\): payments answered 400")
        got = self.alice.get(b.id)
        self.assertEqual(got.status, pb.APPROVAL_STATUS_FAILED)
        self.assertEqual(got.execution.state, pb.EXECUTION_STATE_FAILED)
        self.assertIn("payments answered 400", got.execution_error)
        self.assertEqual(len(self.payments.refunds()), 1)

    def test_5_approvalctl_work_through_a_daemon_restart(self):
        import grpc
        from approvald_client import pb, struct_to_dict
        program = PROGRAM
        program_log = os.path.join(self.tmp, "refund_program.log")
        work_log_path = os.path.join(self.tmp, "approvalctl-work.log")
        with open(work_log_path, "w") as work_log:
            work = subprocess.Popen(
                [APPROVALCTL, "--addr", self.target, "work", "--type", TYPE, "--concurrency", "3",
                 "--", "/usr/bin/python3", program, self.payments.url, program_log],
                stdin=subprocess.DEVNULL, stdout=work_log, stderr=subprocess.STDOUT,
                env=dict(os.environ, APPROVALD_TOKEN=self.tokens["worker"]))
        self.addCleanup(harness.terminate, work)

        def work_output():
            with open(work_log_path, errors="replace") as f:
                return "approvalctl work output:\n" + f.read()

        approvals = self.approved_refunds(12)
        zero = self.approved_refunds(1, amount_cents=0)[0]
        ids = [a.id for a in approvals] + [zero.id]

        def states():
            self.assertIsNone(work.poll(), work_output())
            try:
                return [self.alice.get(i).execution.state for i in ids]
            except grpc.RpcError as err:  # after the restart, the channel may be reconnecting
                if err.code() != grpc.StatusCode.UNAVAILABLE:
                    raise
                return []

        # kill -9 once some refunds are done, while others are running or queued.
        harness.wait_until(lambda: states().count(pb.EXECUTION_STATE_SUCCEEDED) >= 3, 60,
                           "3 executions to succeed", interval=0.1)
        applied = len(self.payments.refunds())
        self.daemon.restart()
        self.assertLess(applied, 12, "all refunds were done before the restart")
        print("refunds applied when approvald was killed: %d" % applied)

        def all_ended():
            now = states()
            return now and all(s in (pb.EXECUTION_STATE_SUCCEEDED, pb.EXECUTION_STATE_FAILED)
                               for s in now)
        harness.wait_until(all_ended, 90, "13 executions to end", interval=0.25)

        # What each program run was given: the approval on stdin, its execution in the env.
        with open(program_log) as f:
            runs = [json.loads(line) for line in f]
        key_of = {}
        for a in approvals + [zero]:
            mine = [r["env"] for r in runs if r["stdin_id"] == a.id]
            self.assertTrue(mine, "no run of approval %s" % a.id)
            for env in mine:
                self.assertEqual(env["APPROVALD_APPROVAL_ID"], a.id)
                self.assertEqual(env["APPROVALD_EXECUTION_ID"], a.execution.execution_id)
                self.assertEqual(env["APPROVALD_ACTION_TYPE"], TYPE)
                self.assertGreaterEqual(int(env["APPROVALD_ATTEMPT"]), 1)
            keys = {env["APPROVALD_IDEMPOTENCY_KEY"] for env in mine}
            self.assertEqual(len(keys), 1, "attempts of one execution with different keys")
            key_of[a.id] = keys.pop()
        self.assertEqual(len(set(key_of.values())), 13)

        # The provider applied each of the 12 refunds once, under its execution's key, and each
        # approval records the provider's answer, the program's stdout, as its result.
        refunds = self.payments.refunds()
        self.assertEqual(sorted(r["order_id"] for r in refunds),
                         sorted(int(a.action_data["order_id"]) for a in approvals))
        by_order = {r["order_id"]: r for r in refunds}
        for a in approvals:
            got = self.alice.get(a.id)
            self.assertEqual(got.status, pb.APPROVAL_STATUS_APPROVED)
            self.assertEqual(got.execution.state, pb.EXECUTION_STATE_SUCCEEDED,
                             pb.ExecutionState.Name(got.execution.state))
            self.assertEqual(got.execution_error, "")
            refund = by_order[int(a.action_data["order_id"])]
            self.assertEqual(refund["idempotency_key"], key_of[a.id])
            self.assertEqual(struct_to_dict(got.execution_result), refund)

        # Exit code 100 failed the amount of 0 for good, with the program's last stderr line.
        got = self.alice.get(zero.id)
        self.assertEqual(got.status, pb.APPROVAL_STATUS_FAILED)
        self.assertEqual(got.execution.state, pb.EXECUTION_STATE_FAILED)
        self.assertIn("payments answered 400", got.execution_error)
        self.assertIn("exit code 100", got.execution_error)

        # SIGTERM: it stops claiming, and exits 0 once its claim's long-poll (10 s) ends.
        harness.terminate(work, grace=30, check=True)
        self.assertEqual(work.returncode, 0, work_output())


if __name__ == "__main__":
    harness.run_tests()
