"""Service Quotas' ListServiceQuotas, which moto 5.2 does not implement: the applied quotas of the
local account, as a test or a user set them (`applied`).

AWS's API reference, ListServiceQuotas: "Lists the applied quota values for the specified Amazon Web
Services service. For some quotas, only the default values are available. If the applied quota
value is not available for a quota, the quota is not retrieved." A local account has no applied
value until one is set here, so it lists none, and a run keeps its item's bound. Every quota is
answered in one page (AWS pages by MaxResults, at most 100: the framework reads every page alike).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

# (account, region) -> service code -> quota name -> applied value
APPLIED: dict[tuple[str, str], dict[str, dict[str, float]]] = {}


def applied(account: str, region: str, service_code: str, name: str, value: float) -> None:
    """Give the local account an applied quota, as a quota increase (or a new account's 0) would."""
    APPLIED.setdefault((account, region), {}).setdefault(service_code, {})[name] = value


def install() -> Callable[[], None]:
    from .motoport import ServiceQuotasResponse

    def list_service_quotas(self: Any) -> str:
        code = json.loads(self.body)["ServiceCode"]
        quotas = [
            {
                "ServiceCode": code,
                "QuotaName": name,
                # the quota's code: AWS's are opaque ("L-" and 8 hex digits); here one per name
                "QuotaCode": "L-" + hashlib.sha256(name.encode()).hexdigest()[:8].upper(),
                "Value": value,
                "Unit": "None",
                "Adjustable": True,
                "GlobalQuota": False,
            }
            for name, value in APPLIED.get((self.current_account, self.region), {}).get(code, {}).items()
        ]
        return json.dumps({"Quotas": quotas})

    had = getattr(ServiceQuotasResponse, "list_service_quotas", None)
    ServiceQuotasResponse.list_service_quotas = list_service_quotas  # type: ignore[attr-defined]

    def uninstall() -> None:
        if had is None:
            del ServiceQuotasResponse.list_service_quotas  # type: ignore[attr-defined]
        else:
            ServiceQuotasResponse.list_service_quotas = had  # type: ignore[attr-defined]

    return uninstall
