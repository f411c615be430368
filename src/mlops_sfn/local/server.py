"""The local AWS's server process: moto's server plus the fills the framework needs inside it.

Run as `python -m mlops_sfn.local.server -H 127.0.0.1 -p PORT --ssl` (MotoServer does).

Fill: moto 5.2 evaluates a bucket policy's Deny statements without their conditions, so the
bucket's TLS-only statement (Deny when aws:SecureTransport is false) would deny every request.
This server only speaks TLS, so a statement that applies only without TLS never applies here.
"""

from __future__ import annotations

import json
import sys
from typing import Any

WITHOUT_TLS = {"Bool": {"aws:SecureTransport": "false"}}


def applies_only_without_tls(statement: dict[str, Any]) -> bool:
    return statement.get("Condition") == WITHOUT_TLS


def install() -> None:
    from moto.iam.access_control import IAMPolicy, PermissionResult
    from moto.s3.models import FakeBucket

    def get_permission(bucket: Any, action: str, resource: str) -> Any:
        if bucket.policy is None:
            return PermissionResult.NEUTRAL
        document = json.loads(bucket.policy)
        statements = document["Statement"] if isinstance(document["Statement"], list) else [document["Statement"]]
        kept = [statement for statement in statements if not applies_only_without_tls(statement)]
        if not kept:
            return PermissionResult.NEUTRAL
        return IAMPolicy(json.dumps({**document, "Statement": kept})).is_action_permitted(action, resource)

    FakeBucket.get_permission = get_permission  # type: ignore[method-assign,assignment]


def main(argv: list[str] | None = None) -> None:
    from moto.server import main as moto_main

    install()
    moto_main(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
