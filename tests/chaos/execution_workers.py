"""The worker processes of tests/chaos/executions_chaos.py: each runs the Python client's
executions() loop on refund.provider against one approvald replica, notes every attempt it was
handed in a JSONL log, and can be killed -9 and restarted."""

import itertools
import json
import os
import signal
import subprocess
import sys

# One worker process (written to the temp dir): the client's executions() loop with the type's
# lease; the refund is POSTed as example_worker.py does it, then held for up to HOLD_MS (the rest
# of the work: a kill then leaves the refund applied and the execution not completed), then
# completed with the provider's answer. Each claimed attempt is noted in its JSONL log before the
# provider is called, in one write(), so that a kill -9 leaves whole lines only.
WORKER = """\
import json, os, random, signal, sys, threading, time
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
client_dir, target, payments_url, log_path, hold_ms = sys.argv[1:6]
sys.path.insert(0, client_dir)
import grpc
import example_worker
from approvald_client import ApprovalClient, error_info

log = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
with ApprovalClient(target, os.environ["APPROVALD_TOKEN"]) as client:
    for ex in client.executions("refund.provider", lease=None, wait=2, stop=stop):
        os.write(log, (json.dumps({"execution_id": ex.execution_id, "attempt": ex.attempt,
                                   "key": ex.idempotency_key, "approval_id": ex.approval.id,
                                   "order_id": ex.action_data["order_id"]}) + "\\n").encode())
        try:
            with ex:  # an exception fails the attempt (retryable)
                status, answer = example_worker.post_refund(payments_url, ex.action_data,
                                                            ex.idempotency_key)
                time.sleep(random.uniform(0, float(hold_ms) / 1000))
                ex.complete(answer)
            line = "%r: completed (%d)" % (ex, status)
        except grpc.RpcError as err:  # LEASE_LOST, or the replica is down: its lease runs out
            info = error_info(err)
            line = "%r: %s %s" % (ex, err.code().name, info.reason if info else "-")
        except OSError as err:  # the provider refused it or could not be reached
            line = "%r: %s" % (ex, err)
        print(line, flush=True)
"""


class Workers:
    """The worker processes: slot i runs one at a time, each start on the next replica in
    round-robin order. Tells the kills it made from exits of their own."""

    def __init__(self, root, tmp, replicas, payments_url, token, gen, hold_ms):
        self.script = os.path.join(tmp, "worker.py")
        with open(self.script, "w") as f:
            f.write(WORKER)
        self.root, self.tmp, self.replicas, self.payments_url = root, tmp, replicas, payments_url
        self.hold_ms = hold_ms
        self.env = dict(os.environ, APPROVALD_TOKEN=token, APPROVALD_PY_GEN=gen)
        self.procs = {}
        self.next_replica = itertools.count()
        self.killed = 0
        self.exits = []     # (slot, code) of exits nobody asked for
        self.no_stop = []   # slots that had to be killed after SIGTERM

    def log(self, slot, kind):
        return os.path.join(self.tmp, "worker-%d.%s" % (slot, kind))

    def start(self, slot):
        replica = self.replicas[next(self.next_replica) % len(self.replicas)]
        with open(self.log(slot, "log"), "a") as out:
            self.procs[slot] = subprocess.Popen(
                [sys.executable, self.script, os.path.join(self.root, "client", "python"),
                 replica.target, self.payments_url, self.log(slot, "jsonl"),
                 str(self.hold_ms)],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=self.env)

    def kill9(self, slot):
        proc = self.procs[slot]
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
            self.killed += 1
        else:
            self.exits.append((slot, proc.returncode))
        self.start(slot)

    def reap(self):
        """Restarts the workers that exited on their own (recorded)."""
        for slot, proc in list(self.procs.items()):
            if proc.poll() is not None:
                self.exits.append((slot, proc.returncode))
                self.start(slot)

    def stop(self):
        """SIGTERM to all; the loop ends after its claim's long-poll (2 s)."""
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for slot, proc in self.procs.items():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
                self.no_stop.append(slot)
                continue
            # -SIGTERM: a worker restarted just now, before it had set its handler.
            if proc.returncode not in (0, -signal.SIGTERM):
                self.exits.append((slot, proc.returncode))

    def kill_all(self):
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)

    def attempts(self):
        """Every attempt that a worker was handed, from their logs."""
        notes = []
        for slot in self.procs:
            path = self.log(slot, "jsonl")
            if os.path.exists(path):
                with open(path) as f:
                    notes.extend(json.loads(line) for line in f)
        return notes
