"""Which account a call of the local runtime is made in.

One local AWS serves every account: moto keeps each account's resources apart, and answers a request
in the account its `x-moto-account-id` header names, else the account of the temporary credentials
that signed it, else its default account (moto 5.2, `BaseResponse.get_current_account`). The
runtime's own clients (a Task's, a job's, an endpoint's) are made here for the account of the state
machine, role or endpoint they act for, so that a deployment in a second account (a production that
serves a development account's packages) runs in that account, as it would on AWS.
"""

from __future__ import annotations

import threading
from typing import Any

from . import REGION

DEFAULT = "123456789012"  # the account moto serves a request that names none
HEADER = "x-moto-account-id"

_CLIENTS: dict[tuple[str, str, str], Any] = {}  # (service, region, account) -> a client of the local AWS
_LOCK = threading.Lock()


def in_account(client: Any, account: str) -> Any:
    """`client`, sending every request in `account` (the default account's needs nothing)."""
    if account and account != DEFAULT:

        def name_account(request: Any, **_: Any) -> None:
            request.headers[HEADER] = account

        client.meta.events.register_first("before-sign", name_account)
    return client


def client(service: str, region: str = REGION, account: str = DEFAULT) -> Any:
    """A client of the in-process local AWS in `account`, one per service, region and account (boto3's
    clients are thread-safe), made as moto's interpreter makes a Task's: no client-side validation and
    no retries, so that the service's own answer (a refusal, a throttle) is what the Task sees."""
    import boto3
    from botocore.config import Config

    with _LOCK:
        if (service, region, account) not in _CLIENTS:
            config = Config(parameter_validation=False, retries={"max_attempts": 0, "total_max_attempts": 1})
            made = boto3.client(service, region_name=region, config=config)
            _CLIENTS[service, region, account] = in_account(made, account)
        return _CLIENTS[service, region, account]
