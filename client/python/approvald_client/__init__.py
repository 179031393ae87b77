"""Python client of approvald (approvals.v1.ApprovalService).

    from approvald_client import ApprovalClient, error_info, pb

Run client/python/generate.sh first (or point APPROVALD_PY_GEN at its output): the generated
protobuf and gRPC modules are not committed. See client/python/README.md.
"""

from .client import (ApprovalClient, error_details_pb2, error_info, is_final, pb, pb_grpc,
                     status_details, status_pb2)

__all__ = ["ApprovalClient", "error_info", "is_final", "status_details", "pb", "pb_grpc",
           "status_pb2", "error_details_pb2"]
