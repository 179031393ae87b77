#!/usr/bin/python3
"""A fake payment provider for trying executors out: refunds in memory, idempotent by key.

    POST /refunds   body {"order_id": int, "amount_cents": int > 0}, header Idempotency-Key
                    (or approvald's `webhook` action body, whose approval.actionData is that)
        201 {"id": "re_1", "order_id", "amount_cents", "idempotency_key", "status": "succeeded"}
            a new key: the refund is applied
        200 the same body again: a key already used with the same order and amount (the refund
            is not applied twice)
        409 the key was used with another order or amount; 400 a bad body or no key
    GET /refunds    200 {"refunds": [...]}: the applied refunds, oldest first

Standard library only. Run it with `fake_payments.py [--host 127.0.0.1] [--port 8090]`, or in a
test: `server = fake_payments.serve(0)` starts it on a thread (server.url, server.refunds(),
server.fail_next(503) to answer the next POST with that status without applying it,
server.delay_next(5) to hold the next POST that long before handling it (delays_left()
counts the ones not yet taken),
server.requests() and server.statuses() to count the POSTs received, server.close()).
Applied refunds and requests are counted apart: a retry that its key deduplicates, a refused POST
or an injected failure is a request but applies nothing.
"""

import argparse
import collections
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_MAX_BODY = 64 * 1024


class _Handler(BaseHTTPRequestHandler):
    server_version = "fake-payments/1"

    def log_message(self, fmt, *args):
        if self.server.verbose:
            super().log_message(fmt, *args)

    def _answer(self, status, body):
        data = json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            pass  # the client gave up waiting (its timeout); what was applied stays applied

    def do_GET(self):
        if self.path.split("?")[0] != "/refunds":
            return self._answer(404, {"error": "not found"})
        self._answer(200, {"refunds": self.server.refunds()})

    def do_POST(self):
        if self.path.split("?")[0] != "/refunds":
            return self._answer(404, {"error": "not found"})
        status, answer = self._post_refund()
        self.server.count(status)
        self._answer(status, answer)

    def _post_refund(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length > _MAX_BODY:
            return 413, {"error": "body too large"}
        try:
            body = json.loads(self.rfile.read(length) or b"null")
        except ValueError:
            return 400, {"error": "the body is not JSON"}
        if isinstance(body, dict) and isinstance(body.get("approval"), dict):
            body = body["approval"].get("actionData")  # a `webhook` action's envelope
        self.server.hold()
        return self.server.refund(self.headers.get("Idempotency-Key", ""), body)


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


class FakePayments(ThreadingHTTPServer):
    """The server: its state is guarded by one lock, so concurrent requests with the same key
    apply the refund once."""

    daemon_threads = True

    def __init__(self, address, verbose=False):
        super().__init__(address, _Handler)
        self.verbose = verbose
        self._lock = threading.Lock()
        self._refunds = []   # applied, oldest first
        self._by_key = {}    # Idempotency-Key -> refund
        self._failures = []  # statuses for the next POSTs
        self._delays = []    # seconds to hold the next POSTs
        self._statuses = collections.Counter()  # POST /refunds received, by status answered
        self._thread = None

    @property
    def url(self):
        host, port = self.server_address[:2]
        return "http://%s:%d" % (host, port)

    def refunds(self):
        """The applied refunds (copies), oldest first."""
        with self._lock:
            return [dict(r) for r in self._refunds]

    def requests(self):
        """How many POST /refunds were received, whatever they were answered (applied, the
        same refund again, refused, an injected failure); counted before the answer is sent, so
        a client that went away counts too."""
        with self._lock:
            return sum(self._statuses.values())

    def statuses(self):
        """The POST /refunds received, as {HTTP status answered: count}."""
        with self._lock:
            return dict(self._statuses)

    def count(self, status):
        """Counts a POST /refunds answered with status (the handler calls it)."""
        with self._lock:
            self._statuses[status] += 1

    def fail_next(self, *statuses):
        """The next POSTs answer these statuses (e.g. 503), one each, applying nothing."""
        with self._lock:
            self._failures.extend(statuses)

    def delay_next(self, *seconds):
        """The next POSTs wait this long each before they are handled (a slow provider)."""
        with self._lock:
            self._delays.extend(seconds)

    def delays_left(self):
        """How many delay_next() delays no POST has taken yet."""
        with self._lock:
            return len(self._delays)

    def hold(self):
        """Waits out the next delay, if any (the handler calls it)."""
        with self._lock:
            delay = self._delays.pop(0) if self._delays else 0
        if delay:
            time.sleep(delay)

    def refund(self, key, body):
        """(status, answer) of POST /refunds."""
        with self._lock:
            if self._failures:
                return self._failures.pop(0), {"error": "injected failure"}
            if not key:
                return 400, {"error": "the Idempotency-Key header is required"}
            if not isinstance(body, dict) or not _is_int(body.get("order_id")) or \
                    not _is_int(body.get("amount_cents")) or body["amount_cents"] <= 0:
                return 400, {"error": "order_id and amount_cents (> 0) must be integers"}
            seen = self._by_key.get(key)
            if seen is not None:
                if (seen["order_id"], seen["amount_cents"]) != (body["order_id"],
                                                                body["amount_cents"]):
                    return 409, {"error": "Idempotency-Key %s was used for another refund" % key}
                return 200, dict(seen)
            refund = {"id": "re_%d" % (len(self._refunds) + 1), "order_id": body["order_id"],
                      "amount_cents": body["amount_cents"], "idempotency_key": key,
                      "status": "succeeded"}
            self._refunds.append(refund)
            self._by_key[key] = refund
            return 201, dict(refund)

    def close(self):
        """Stops serving (if started by serve()) and closes the socket."""
        if self._thread is not None:
            self.shutdown()
            self._thread.join(timeout=10)
        self.server_close()


def serve(port=0, host="127.0.0.1", verbose=False):
    """A FakePayments listening on host:port (0: a free port), served on a daemon thread."""
    server = FakePayments((host, port), verbose=verbose)
    server._thread = threading.Thread(target=server.serve_forever, daemon=True,
                                      name="fake-payments")
    server._thread.start()
    return server


def main(argv):
    parser = argparse.ArgumentParser(description="A fake payment provider (refunds).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    args = parser.parse_args(argv[1:])
    server = FakePayments((args.host, args.port), verbose=True)
    print("fake payments on %s (POST /refunds, GET /refunds)" % server.url, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
