#!/usr/bin/python3
"""`approvalctl work` with a shell script as the executor of refund.provider.

The script (/bin/sh, written to the temp dir) reads order_id and amount_cents from the approval
JSON on stdin (python3 -c), POSTs the refund to client/python/fake_payments.py with curl and
`Idempotency-Key: $APPROVALD_IDEMPOTENCY_KEY`, prints the provider's answer (the execution's
result) and exits 100 on a 4xx, 1 on anything else that failed. It logs what it was given.
  1. 8 refunds, concurrency 3: each applied once under its execution's key, with the provider's
     answer as the result; SIGTERM stops approvalctl work with exit 0.
  2. with CRASH_AFTER_POST=1 it kills itself (kill -9 $$) after the provider applied the refund
     on attempt 1: the attempt fails retryable (signal 9), attempt 2 sends the same key and the
     provider answers the refund it made (200): 3 refunds applied once each, 6 requests.
  3. exit codes: a 503 makes it exit 1 (retried, then it succeeds); an amount of 0 is a 400,
     exit 100: the approval FAILED for good at attempt 1, with the script's last stderr line.

usage: work_shell_e2e.py APPROVALD APPROVALCTL REPO_ROOT   (APPROVALD_TEST_DSN must be set)
"""

import itertools
import os
import subprocess
import sys

APPROVALD, APPROVALCTL, ROOT = sys.argv[1:4]
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
import harness  # noqa: E402

TYPE = "refund.provider"

SCRIPT = r"""#!/bin/sh
# usage: refund.sh PAYMENTS_URL LOG   (the approval as JSON on stdin)
# CRASH_AFTER_POST=1: on attempt 1, kill -9 itself once the provider has answered.
url=$1
log=$2
body=$(python3 -c '
import json, sys
data = json.load(sys.stdin)["actionData"]
print(json.dumps({"order_id": data["order_id"], "amount_cents": data["amount_cents"]}))
') || exit 1
echo "$APPROVALD_APPROVAL_ID $APPROVALD_EXECUTION_ID $APPROVALD_ATTEMPT" \
  "$APPROVALD_IDEMPOTENCY_KEY" >>"$log"
out=$(curl -sS --max-time 10 -w '\n%{http_code}' -H 'Content-Type: application/json' \
  -H "Idempotency-Key: $APPROVALD_IDEMPOTENCY_KEY" --data-binary "$body" "$url/refunds") ||
  exit 1
code=$(printf '%s\n' "$out" | tail -n 1)
answer=$(printf '%s\n' "$out" | sed '$d')
if [ "${CRASH_AFTER_POST:-}" = 1 ] && [ "$APPROVALD_ATTEMPT" = 1 ]; then
  kill -9 $$
fi
case $code in
  2??) printf '%s\n' "$answer" ;;
  4??) echo "payments answered $code: $answer" >&2; exit 100 ;;
  *) echo "payments answered $code: $answer" >&2; exit 1 ;;
esac
"""
_order_ids = itertools.count(5000)


class WorkShellTest(harness.DatabaseTestCase):
    @classmethod
    def setUpClass(cls):
        cls.set_up_database("workshell", APPROVALCTL, harness.REFUND_PRINCIPALS)
        harness.use_python_client(ROOT, cls.tmp)  # also puts client/python on sys.path
        config = os.path.join(cls.tmp, "approvald.yaml")
        with open(config, "w") as f:
            f.write(harness.refund_provider_config())
        cls.script = os.path.join(cls.tmp, "refund.sh")
        with open(cls.script, "w") as f:
            f.write(SCRIPT)
        cls.daemon = harness.Approvald(APPROVALD, cls.dsn, cls.tokens_file, config, cls.tmp)
        cls.addClassCleanup(cls.daemon.stop)

    def setUp(self):
        import fake_payments
        from approvald_client import ApprovalClient
        self.payments = fake_payments.serve(0)
        self.addCleanup(self.payments.close)
        self.alice = ApprovalClient(self.daemon.target, self.tokens["alice"])
        self.addCleanup(self.alice.close)
        self.log = os.path.join(self.tmp, "%s.runs" % self._testMethodName)

    def approved_refunds(self, n, amount_cents=500):
        from approvald_client import ApprovalClient, pb
        approvals = []
        with ApprovalClient(self.daemon.target, self.tokens["agent"]) as agent:
            for _ in range(n):
                order_id = next(_order_ids)
                a = agent.create(TYPE, {"order_id": order_id, "amount_cents": amount_cents},
                                 summary="refund order %d" % order_id)
                approved = self.alice.approve(a.id)
                self.assertEqual(approved.status, pb.APPROVAL_STATUS_APPROVED)
                approvals.append(approved)
        return approvals

    def work(self, concurrency, **env):
        """Starts `approvalctl work` with the script; env: for the script (approvalctl passes
        its environment on, without its APPROVALD_* variables)."""
        path = os.path.join(self.tmp, "%s.work.log" % self._testMethodName)
        with open(path, "w") as out:
            proc = subprocess.Popen(
                [APPROVALCTL, "--addr", self.daemon.target, "work", "--type", TYPE,
                 "--concurrency", str(concurrency), "--", "/bin/sh", self.script,
                 self.payments.url, self.log],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                env=dict(os.environ, APPROVALD_TOKEN=self.tokens["worker"], **env))
        self.addCleanup(harness.terminate, proc)

        def output():
            with open(path, errors="replace") as f:
                return "approvalctl work output:\n" + f.read()
        proc.output = output
        return proc

    def wait_ended(self, work, approvals):
        """Waits until the executions of approvals have ended (SUCCEEDED or FAILED)."""
        from approvald_client import pb
        ended = (pb.EXECUTION_STATE_SUCCEEDED, pb.EXECUTION_STATE_FAILED)

        def all_ended():
            self.assertIsNone(work.poll(), work.output())
            return all(self.alice.get(a.id).execution.state in ended for a in approvals)
        harness.wait_until(all_ended, 60, "%d executions to end" % len(approvals),
                           interval=0.2)

    def stop(self, work):
        """SIGTERM: approvalctl work stops claiming and exits 0 after its long-poll (10 s)."""
        harness.terminate(work, grace=30, check=True)
        self.assertEqual(work.returncode, 0, work.output())

    def runs(self, approval):
        """[(attempt, idempotency key)] of the script's runs for approval, in order."""
        with open(self.log) as f:
            rows = [line.split() for line in f]
        mine = [r for r in rows if r[0] == approval.id]
        for r in mine:
            self.assertEqual(r[1], approval.execution.execution_id)
        return [(int(r[2]), r[3]) for r in mine]

    def attempts_sql(self, approval):
        """[(attempt, outcome, error)] of approvald.execution_attempts for approval."""
        return [(int(n), outcome, error) for n, outcome, error in harness.psql(
            "SELECT attempt, outcome, coalesce(error, '') FROM approvald.execution_attempts"
            " WHERE execution_id = '%s' ORDER BY attempt" % approval.execution.execution_id,
            self.dsn)]

    def assert_refunded(self, approval, attempts):
        """approval SUCCEEDED after `attempts` attempts, all with one key, the provider's
        refund (applied once, under that key) as its result."""
        from approvald_client import pb, struct_to_dict
        got = self.alice.get(approval.id)
        self.assertEqual(got.status, pb.APPROVAL_STATUS_APPROVED)
        self.assertEqual(got.execution.state, pb.EXECUTION_STATE_SUCCEEDED,
                         pb.ExecutionState.Name(got.execution.state))
        self.assertEqual(got.execution.attempts, attempts)
        self.assertEqual(got.execution_error, "")
        runs = self.runs(approval)
        self.assertEqual([n for n, _ in runs], list(range(1, attempts + 1)))
        keys = {k for _, k in runs}
        self.assertEqual(len(keys), 1, "attempts of one execution with different keys")
        order_id = int(approval.action_data["order_id"])
        refunds = [r for r in self.payments.refunds() if r["order_id"] == order_id]
        self.assertEqual(len(refunds), 1)
        self.assertEqual(refunds[0]["idempotency_key"], keys.pop())
        self.assertEqual(struct_to_dict(got.execution_result), refunds[0])
        self.assertEqual(self.attempts_sql(approval)[-1][:2], (attempts, "succeeded"))

    def test_1_a_shell_script_runs_each_refund_once(self):
        work = self.work(3)
        approvals = self.approved_refunds(8)
        self.wait_ended(work, approvals)
        for a in approvals:
            self.assert_refunded(a, attempts=1)
        self.assertEqual(len({k for a in approvals for _, k in self.runs(a)}), 8)
        self.assertEqual(self.payments.statuses(), {201: 8})
        self.stop(work)

    def test_2_a_script_killed_after_posting_is_retried_with_the_same_key(self):
        work = self.work(2, CRASH_AFTER_POST="1")
        approvals = self.approved_refunds(3)
        self.wait_ended(work, approvals)
        for a in approvals:
            self.assert_refunded(a, attempts=2)
            first = self.attempts_sql(a)[0]
            self.assertEqual(first[:2], (1, "retry"))
            self.assertIn("signal 9", first[2])
        # Each refund was sent twice (the crashed attempt and its retry) and applied once.
        self.assertEqual(len(self.payments.refunds()), 3)
        self.assertEqual(self.payments.requests(), 6)
        self.assertEqual(self.payments.statuses(), {201: 3, 200: 3})
        self.stop(work)

    def test_3_exit_1_is_retried_exit_100_fails_for_good(self):
        from approvald_client import pb
        work = self.work(1)
        self.payments.fail_next(503)
        retried = self.approved_refunds(1)[0]
        self.wait_ended(work, [retried])
        self.assert_refunded(retried, attempts=2)
        first = self.attempts_sql(retried)[0]
        self.assertEqual(first[:2], (1, "retry"))
        self.assertIn("payments answered 503", first[2])
        self.assertIn("exit code 1)", first[2])

        zero = self.approved_refunds(1, amount_cents=0)[0]
        self.wait_ended(work, [zero])
        got = self.alice.get(zero.id)
        self.assertEqual(got.status, pb.APPROVAL_STATUS_FAILED)
        self.assertEqual(got.execution.state, pb.EXECUTION_STATE_FAILED)
        self.assertEqual(got.execution.attempts, 1)
        self.assertIn("payments answered 400", got.execution_error)
        self.assertIn("(exit code 100)", got.execution_error)
        self.assertEqual(self.attempts_sql(zero)[0][:2], (1, "failed"))
        self.assertEqual([n for n, _ in self.runs(zero)], [1])
        self.assertEqual(len(self.payments.refunds()), 1)  # the 400 applied nothing
        self.assertEqual(self.payments.statuses(), {503: 1, 201: 1, 400: 1})
        self.stop(work)


if __name__ == "__main__":
    harness.run_tests()
