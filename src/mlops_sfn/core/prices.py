"""What SageMaker instances cost per hour, per region and use, from a dated table shipped with the
package (prices.json), and that table read from AWS's public price list.

The price list's offer files ("Using the bulk API", AWS Billing user guide) hold `products` keyed by
SKU, each with a `productFamily` and `attributes`, and `terms.OnDemand[sku][offer term]`
`.priceDimensions[rate].pricePerUnit.USD` with a `unit` ("Hrs" for an instance). SageMaker's
instances are the products of family "ML Instance", named by `attributes.instanceName`
("ml.m5.large"), placed by `attributes.regionCode`, and used as `attributes.component` says
(training, processing, batch transform, hosting).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

TABLE = Path(__file__).with_name("prices.json")
USES = ("training", "processing", "transform", "hosting")
# The regional offer file of SageMaker, public and unsigned (AWS Billing user guide, "Using the bulk API").
OFFER_URL = "https://pricing.us-east-1.amazonaws.com/offers/v1.0/aws/AmazonSageMaker/current/{region}/index.json"


@dataclass(frozen=True)
class Prices:
    as_of: str
    source: str
    transition: float  # USD per Step Functions Standard state transition
    regions: dict[str, dict[str, dict[str, float]]]  # region -> use -> instance type -> USD per hour

    def hourly(self, region: str, use: str, instance_type: str) -> float | None:
        """USD per instance-hour, None when the table has no price for it."""
        return self.regions.get(region, {}).get(use, {}).get(instance_type)

    def as_dict(self) -> dict[str, Any]:
        return {
            "prices_as_of": self.as_of,
            "source": self.source,
            "currency": "USD",
            "step_functions_transition": self.transition,
            "regions": self.regions,
        }


@cache
def load(path: Path = TABLE) -> Prices:
    document = json.loads(path.read_text())
    return Prices(
        as_of=str(document["prices_as_of"]),
        source=str(document["source"]),
        transition=float(document["step_functions_transition"]),
        regions=document["regions"],
    )


def use_of(component: str) -> str | None:
    """The use a price list's `component` names: Training, Processing, Batch Transform, Hosting."""
    word = component.lower()
    for use, words in (("training", ("train",)), ("processing", ("process",)), ("transform", ("transform",))):
        if any(part in word for part in words):
            return use
    return "hosting" if "host" in word else None


def from_offer(offer: dict[str, Any]) -> dict[str, dict[str, dict[str, float]]]:
    """The hourly on-demand prices an offer file holds, region -> use -> instance type. Where two
    products give one instance and use a price, the higher one is kept: an estimate is a bound."""
    found: dict[str, dict[str, dict[str, float]]] = {}
    on_demand = offer.get("terms", {}).get("OnDemand", {})
    for sku, product in offer.get("products", {}).items():
        attributes = product.get("attributes", {})
        use = use_of(str(attributes.get("component", "")))
        name, region = attributes.get("instanceName"), attributes.get("regionCode")
        if product.get("productFamily") != "ML Instance" or not (use and name and region):
            continue
        for term in on_demand.get(sku, {}).values():
            for dimension in term.get("priceDimensions", {}).values():
                usd = float(dimension.get("pricePerUnit", {}).get("USD", 0))
                if dimension.get("unit") != "Hrs" or usd <= 0:
                    continue
                prices = found.setdefault(region, {}).setdefault(use, {})
                prices[name] = max(usd, prices.get(name, 0.0))
    return found


def refreshed(current: Prices, offers: list[dict[str, Any]], as_of: str, source: str) -> Prices:
    """The table with each offer's regions replaced by what the offer holds."""
    regions = dict(current.regions)
    for offer in offers:
        for region, uses in from_offer(offer).items():
            regions[region] = {use: dict(sorted(uses[use].items())) for use in USES if use in uses}
    return Prices(as_of=as_of, source=source, transition=current.transition, regions=regions)
