#!/usr/bin/python3
"""Protect one post through the Unlearnable sidecar and write the result.

Uses Debian's python3-grpcio and python3-grpc-tools (apt install python3-grpcio python3-grpc-tools);
the stubs are generated from protos/ at start, so nothing generated is committed.

    /usr/bin/python3 protect_post.py --address 127.0.0.1:5051 --api-key KEY \
        --user alice --post p1 --image photo.jpg --caption "at the beach" --out protected.jpg

In a cluster give the headless Service, dns:///unlearnable-sidecar-headless.unlearnable:5051: calls are
balanced per call over every replica (round_robin), and UNAVAILABLE or RESOURCE_EXHAUSTED is retried on the
next one (a repeated post_id is answered with the stored result, never protected twice).
"""
import argparse
import importlib
import json
import os
import sys
import tempfile

import grpc
from grpc_tools import protoc

PROTOS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "protos")


def load_stubs():
    out = tempfile.mkdtemp(prefix="unlearnable-stubs-")
    proto = os.path.join(PROTOS, "unlearnable", "v1", "protection.proto")
    code = protoc.main(["protoc", f"-I{PROTOS}", f"--python_out={out}", f"--grpc_python_out={out}", proto])
    if code != 0:
        sys.exit(f"protoc failed on {proto}")
    sys.path.insert(0, out)
    return importlib.import_module("unlearnable.v1.protection_pb2"), importlib.import_module("unlearnable.v1.protection_pb2_grpc")


SERVICE_CONFIG = {
    "loadBalancingConfig": [{"round_robin": {}}],
    "methodConfig": [{
        "name": [{"service": "unlearnable.v1.ProtectionService"}],
        "retryPolicy": {
            "maxAttempts": 4, "initialBackoff": "0.2s", "maxBackoff": "3s", "backoffMultiplier": 2,
            "retryableStatusCodes": ["UNAVAILABLE", "RESOURCE_EXHAUSTED"],
        },
    }],
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--address", default="127.0.0.1:5051")
    parser.add_argument("--api-key", default=os.environ.get("UNLEARNABLE_API_KEY", ""))
    parser.add_argument("--user", required=True)
    parser.add_argument("--post", required=True)
    parser.add_argument("--image", required=True)
    parser.add_argument("--caption", default="")
    parser.add_argument("--out", required=True, help="where to write the protected image")
    parser.add_argument("--timeout", type=float, default=120.0, help="deadline in seconds")
    args = parser.parse_args()

    pb, rpc = load_stubs()
    with open(args.image, "rb") as f:
        image = f.read()
    limit = 64 * 1024 * 1024
    options = [
        ("grpc.max_receive_message_length", limit), ("grpc.max_send_message_length", limit),
        ("grpc.service_config", json.dumps(SERVICE_CONFIG)), ("grpc.enable_retries", 1),
        ("grpc.per_rpc_retry_buffer_size", 48 * 1024 * 1024),  # photos are kept to be sent again (the default is 256 KiB)
    ]
    with grpc.insecure_channel(args.address, options=options) as channel:
        client = rpc.ProtectionServiceStub(channel)
        request = pb.ProtectRequest(user_id=args.user, post_id=args.post, image=image, caption=args.caption)
        metadata = [("x-api-key", args.api_key)] if args.api_key else []
        try:
            response = client.Protect(request, timeout=args.timeout, metadata=metadata)
        except grpc.RpcError as e:
            print(f"{e.code().name}: {e.details()}", file=sys.stderr)
            return 1
    with open(args.out, "wb") as f:
        f.write(response.image)
    print(json.dumps({
        "post_id": response.post_id,
        "protected_caption": response.protected_caption,
        "trigger": response.trigger,
        "linf": response.quality.linf,
        "psnr_db": round(response.quality.psnr_db, 2),
        "queued_ms": round(response.quality.queued_ms, 1),
        "optimise_ms": round(response.quality.optimise_ms, 1),
        "out": args.out,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
