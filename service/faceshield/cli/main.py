"""`faceshield` console command. Each subcommand lives in its own module with
`register(subparsers)`; this file only wires them up and turns typed errors into exit codes."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from faceshield.engine.errors import FaceShieldError

# Subcommand modules, in the order `--help` lists them. A module that fails to import (e.g. an
# optional dependency missing) is skipped with a notice rather than breaking the whole CLI.
SUBCOMMANDS = ["protect", "evaluate", "serve", "models", "bench"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="faceshield",
        description="Protect face photos so that the deepfakes editing models make of them are useless to a forger.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in SUBCOMMANDS:
        try:
            module = importlib.import_module(f"faceshield.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith("faceshield.cli."):
                continue  # not built yet
            # A dependency of this subcommand is missing (e.g. the gRPC extras on a bare GPU
            # box): keep the others usable and say what to install when this one is asked for.
            _register_unavailable(sub, name, f"the Python package {exc.name or exc!s}")
            continue
        except (ImportError, RuntimeError) as exc:
            # e.g. generated gRPC stubs refusing an older grpcio/protobuf at import
            _register_unavailable(sub, name, f"a compatible dependency ({exc})")
            continue
        module.register(sub)
    return parser


def _register_unavailable(sub: argparse._SubParsersAction, name: str, missing: str) -> None:
    p = sub.add_parser(name, help=f"(unavailable: needs {missing})")

    def fail(_args: argparse.Namespace) -> int:
        print(f"faceshield {name}: unavailable, it needs {missing}", file=sys.stderr)
        return 2

    p.set_defaults(func=fail)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        return int(args.func(args) or 0)
    except FaceShieldError as exc:
        print(f"faceshield: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("faceshield: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
