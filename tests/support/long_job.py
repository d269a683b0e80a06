#!/usr/bin/env python3
"""A long-running AWS job, for tests and the bench: one boto3 session for its whole life
(as a real job keeps one), calling sts:GetCallerIdentity every INTERVAL seconds for SECONDS
seconds. It takes its credentials from boto3's default chain — static keys in the
environment, or the container endpoint (AWS_CONTAINER_CREDENTIALS_FULL_URI), which boto3
refreshes by itself before expiry.

usage: long_job.py --endpoint-url URL [--seconds 30] [--interval 1] [--ready-file PATH]

Prints one JSON line on stdout: {"ok": N, "failed": M, "arns": [...], "errors": [...]}
(distinct ARNs and error messages, a few of each; never a secret). Exits 0 when every call
succeeded, 1 otherwise.
"""

import argparse
import json
import sys
import time

import boto3
import botocore.config


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--endpoint-url", required=True)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--interval", type=float, default=1)
    ap.add_argument("--ready-file", help="touched after the first call")
    a = ap.parse_args()

    session = boto3.session.Session()
    sts = None  # made at the first call: making it already asks for credentials
    ok = failed = 0
    arns: list[str] = []
    errors: list[str] = []
    end = time.monotonic() + a.seconds
    first = True
    while True:
        try:
            if sts is None:
                sts = session.client(
                    "sts",
                    endpoint_url=a.endpoint_url,
                    config=botocore.config.Config(retries={"max_attempts": 1}),
                )
            arn = sts.get_caller_identity()["Arn"]
            ok += 1
            if arn not in arns and len(arns) < 10:
                arns.append(arn)
        except Exception as e:  # noqa: BLE001 - every failure is counted, whatever it is
            failed += 1
            msg = f"{type(e).__name__}: {e}"[:300]
            if msg not in errors and len(errors) < 5:
                errors.append(msg)
        if first and a.ready_file:
            open(a.ready_file, "w").close()
        first = False
        if time.monotonic() >= end:
            break
        time.sleep(a.interval)
    print(json.dumps({"ok": ok, "failed": failed, "arns": arns, "errors": errors}))
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
