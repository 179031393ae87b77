#!/usr/bin/python3
"""The program that executions_worker_e2e.py runs with `approvalctl work`.

usage: refund_program.py PAYMENTS_URL LOG_FILE (the approval as JSON on stdin)

It logs what it was given, POSTs the refund to the fake provider under
APPROVALD_IDEMPOTENCY_KEY and prints the provider's answer; it exits 100 (fatal) on a 4xx and 1
(retried) on any other failure.
"""
import json
import os
import sys
import time
import urllib.error
import urllib.request

payments_url, log_path = sys.argv[1:3]
approval = json.load(sys.stdin)
env = {k: v for k, v in os.environ.items() if k.startswith("APPROVALD_")}
with open(log_path, "a") as log:
    log.write(json.dumps({"stdin_id": approval["id"], "env": env}) + "\n")
data = approval["actionData"]
body = json.dumps({"order_id": data["order_id"], "amount_cents": data["amount_cents"]})
req = urllib.request.Request(payments_url + "/refunds", data=body.encode(), method="POST",
                             headers={"Content-Type": "application/json",
                                      "Idempotency-Key": env["APPROVALD_IDEMPOTENCY_KEY"]})
try:
    with urllib.request.urlopen(req, timeout=10) as resp:
        answer = resp.read().decode()
except urllib.error.HTTPError as err:
    print("payments answered %d: %s" % (err.code, err.read().decode()), file=sys.stderr)
    sys.exit(100 if 400 <= err.code < 500 else 1)
time.sleep(0.5)  # so that some programs are still running when approvald is killed
print(answer)
