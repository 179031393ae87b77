#!/usr/bin/env bash
# Generates the Python modules of the approvald API (messages, gRPC stubs, google.rpc.Status and
# ErrorInfo) that the approvald_client package imports. The generated code is not committed.
#   client/python/generate.sh            into client/python/gen
#   client/python/generate.sh OUT_DIR    into OUT_DIR (created if missing)
# Needs protoc and grpc_python_plugin (Debian: protobuf-compiler, protobuf-compiler-grpc).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${1:-$here/gen}
mkdir -p "$out"
out=$(cd "$out" && pwd)  # protoc runs from the repository root
plugin=${GRPC_PYTHON_PLUGIN:-/usr/bin/grpc_python_plugin}
cd "$root"
protoc --python_out="$out" --grpc_python_out="$out" \
  --plugin=protoc-gen-grpc_python="$plugin" \
  -I proto approvals/v1/approvals.proto approvals/v1/webhooks.proto google/rpc/status.proto google/rpc/error_details.proto \
  google/api/annotations.proto google/api/http.proto
