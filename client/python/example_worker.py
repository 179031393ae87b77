#!/usr/bin/python3
"""approvald_client example executor: runs approved `refund.provider` actions against a payment
API (fake_payments.py), once each, however often an attempt is retried.

usage: example_worker.py [--addr HOST:PORT] [--payments-url URL] [--lease S] [--wait S] [--once]
  token: the environment variable APPROVALD_TOKEN (a principal with the type's executor_roles)
  e.g. client/python/fake_payments.py --port 8090 &
       APPROVALD_TOKEN=... client/python/example_worker.py --addr 127.0.0.1:50051

For each execution it claims: POST {payments-url}/refunds with the approval's order_id and
amount_cents and `Idempotency-Key: <the execution's idempotency_key>` (the same for every
attempt, so a retry after a lost answer does not refund twice). A 2xx completes the execution
with the provider's JSON answer; a 5xx or a connection error fails it retryable (due again after
the type's backoff); another 4xx fails it for good (the approval ends FAILED).
--once: handle one execution, then exit 0 if it completed, 1 if not. Otherwise it runs until
SIGTERM or Ctrl-C.
"""

import argparse
import json
import os
import signal
import sys
import threading
import urllib.error
import urllib.request

import grpc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from approvald_client import ApprovalClient, error_info  # noqa: E402

ACTION_TYPE = "refund.provider"


def post_refund(payments_url, action_data, idempotency_key, timeout=10):
    """POST {payments_url}/refunds of the approval's order_id and amount_cents; returns (HTTP
    status, JSON answer). A 4xx or 5xx raises urllib.error.HTTPError, no connection OSError."""
    body = json.dumps({"order_id": action_data.get("order_id"),
                       "amount_cents": action_data.get("amount_cents")}).encode()
    req = urllib.request.Request(payments_url.rstrip("/") + "/refunds", data=body, method="POST",
                                 headers={"Content-Type": "application/json",
                                          "Idempotency-Key": idempotency_key})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return resp.status, json.loads(resp.read() or b"{}")


def refund(ex, payments_url, timeout=10):
    """Runs one ClaimedExecution: the refund, then complete() or fail(). Returns (completed, a
    line that says what happened). The grpc.RpcError of complete() or fail() propagates."""
    what = "%s %s attempt %d/%d" % (ACTION_TYPE, ex.execution_id, ex.attempt, ex.max_attempts)
    try:
        status, answer = post_refund(payments_url, ex.action_data, ex.idempotency_key, timeout)
    except urllib.error.HTTPError as err:
        text = "payments answered %d: %s" % (err.code, err.read(500).decode(errors="replace"))
        # A 5xx may pass; a 4xx would answer the same next time.
        ex.fail(text, retryable=err.code >= 500)
        return False, "%s: failed (%s): %s" % (
            what, "retryable" if err.code >= 500 else "for good", text)
    except (OSError, ValueError) as err:  # connection refused, timeout, a non-JSON answer
        ex.fail("payments unreachable: %s" % err, retryable=True)
        return False, "%s: failed (retryable): %s" % (what, err)
    ex.complete(answer)
    return True, "%s: completed: refund %s (%d)" % (what, answer.get("id"), status)


def main(argv):
    parser = argparse.ArgumentParser(
        description="Executor of %s approvals against a payment API." % ACTION_TYPE)
    parser.add_argument("--addr", default="127.0.0.1:50051", help="approvald's host:port")
    parser.add_argument("--payments-url", default="http://127.0.0.1:8090")
    parser.add_argument("--lease", type=float, default=30, help="seconds")
    parser.add_argument("--wait", type=float, default=20, help="long-poll of a claim, seconds")
    parser.add_argument("--once", action="store_true", help="handle one execution, then exit")
    args = parser.parse_args(argv[1:])
    token = os.environ.get("APPROVALD_TOKEN", "")
    if not token:
        print("example_worker.py: set APPROVALD_TOKEN", file=sys.stderr)
        return 2
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())  # ends the loop between claims
    with ApprovalClient(args.addr, token) as client:
        try:
            for ex in client.executions(ACTION_TYPE, lease=args.lease, wait=args.wait,
                                        stop=stop):
                try:
                    with ex:  # another exception fails the execution, then stops the worker
                        completed, line = refund(ex, args.payments_url)
                except grpc.RpcError as err:  # e.g. LEASE_LOST: another worker has it now
                    info = error_info(err)
                    completed, line = False, "%s %s: %s %s: %s" % (
                        ACTION_TYPE, ex.execution_id, err.code().name,
                        info.reason if info else "-", err.details())
                print(line, flush=True)
                if args.once:
                    return 0 if completed else 1
        except KeyboardInterrupt:
            return 130
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
