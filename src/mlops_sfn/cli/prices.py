"""`mlops-sfn prices show|refresh`: the price table estimates use (core/prices.py)."""

from __future__ import annotations

import argparse
import datetime
import json
import urllib.request
from pathlib import Path
from typing import Any

from ..checkout import ROOT
from ..core import bounds, prices
from .common import INVALID, OK, UsageError, problem

OFFER_BYTES = 1 << 30  # a regional SageMaker offer file is tens of MB; read no more than this


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("prices", help="the dated SageMaker price table estimates and budgets use")
    verbs = parser.add_subparsers(dest="prices_command", required=True, metavar="COMMAND")
    show = verbs.add_parser("show", help="print the table: its date, source and prices")
    show.add_argument("--json", action="store_true")
    show.set_defaults(run=show_prices)
    refresh = verbs.add_parser("refresh", help="read AWS's public price list (SageMaker's offer file) into the table")
    refresh.add_argument(
        "--region", action="append", default=[], metavar="REGION", help="a region to read (repeatable; us-east-1)"
    )
    refresh.add_argument(
        "--offer",
        action="append",
        default=[],
        type=Path,
        metavar="FILE",
        help="an offer file already downloaded (index.json), instead of fetching each region's",
    )
    refresh.add_argument(
        "--into", type=Path, metavar="FILE", help="write the table here (default: the checkout's shipped table)"
    )
    refresh.set_defaults(run=refresh_prices)


def show_prices(args: argparse.Namespace) -> int:
    table = prices.load()
    if args.json:
        print(json.dumps(table.as_dict(), indent=2))
        return OK
    print(f"prices of {table.as_of} (USD per instance-hour, on demand): {table.source}")
    for region, uses in table.regions.items():
        for use, listed in uses.items():
            print(f"  {region} {use}: " + ", ".join(f"{name} {usd:g}" for name, usd in listed.items()))
    print(f"  Step Functions: USD {table.transition:g} per state transition")
    return OK


def refresh_prices(args: argparse.Namespace) -> int:
    into: Path | None = args.into
    if into is None:
        if not (ROOT / "main.tf").is_file():
            raise UsageError("prices refresh: name the file to write (--into FILE): this is no checkout")
        into = prices.TABLE
    if args.offer and args.region:
        raise UsageError("prices refresh: --offer reads the regions its file holds; leave out --region")
    offers: list[dict[str, Any]] = []
    sources = [
        *args.offer,
        *(prices.OFFER_URL.format(region=r) for r in args.region or ([] if args.offer else ["us-east-1"])),
    ]
    for source in sources:
        try:
            offers.append(bounds.read_json(source, OFFER_BYTES) if isinstance(source, Path) else _fetch(source))
        except (OSError, ValueError, bounds.InputRefused) as error:
            problem(f"mlops-sfn prices refresh: {source}: cannot read the price list: {error}")
            return INVALID
    if not any(prices.from_offer(offer) for offer in offers):
        problem("mlops-sfn prices refresh: the offer holds no SageMaker instance prices (productFamily ML Instance)")
        return INVALID
    source = "AWS price list: " + ", ".join(str(source) for source in sources)
    today = datetime.datetime.now(datetime.UTC).date().isoformat()
    table = prices.refreshed(prices.load(into) if into.is_file() else prices.load(), offers, today, source)
    into.write_text(json.dumps(table.as_dict(), indent=2) + "\n")
    counted = sum(len(listed) for uses in table.regions.values() for listed in uses.values())
    print(f"wrote {into}: {counted} prices in {', '.join(table.regions)}, as of {today}")
    return OK


def _fetch(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=300) as response:
        data = response.read(OFFER_BYTES + 1)
    if len(data) > OFFER_BYTES:
        raise ValueError(f"{url}: more than {OFFER_BYTES} bytes")
    document: dict[str, Any] = bounds.parse_json(data.decode("utf-8"))
    return document
