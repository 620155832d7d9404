"""Generate the Python gRPC stubs of protos/ into clients/ (committed), or check they are current.

    python scripts/gen_protos.py           # regenerate clients/faceshield/v1/*_pb2*.py(i)
    python scripts/gen_protos.py --check   # exit 1 when the committed stubs differ from protos/

It runs `python -m grpc_tools.protoc -Iprotos --python_out=clients --grpc_python_out=clients
--pyi_out=clients protos/faceshield/v1/*.proto`, plus an include path for google/rpc/*.proto
(shipped by googleapis-common-protos, which grpcio-status depends on). The output depends on the
grpcio-tools version (it stamps its protobuf and grpc versions into the files): regenerate and
check with the version pinned in pyproject.toml's dev extra.
"""

from __future__ import annotations

import argparse
import difflib
import filecmp
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROTOS = ROOT / "protos"
OUT = ROOT / "clients"
PACKAGE = Path("faceshield") / "v1"
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")


def proto_files() -> list[Path]:
    return sorted((PROTOS / PACKAGE).glob("*.proto"))


def googleapis_include() -> Path:
    """The folder holding google/rpc/status.proto (googleapis-common-protos)."""
    from google.rpc import status_pb2

    root = Path(status_pb2.__file__).resolve().parents[2]
    if not (root / "google" / "rpc" / "status.proto").is_file():
        raise SystemExit(f"google/rpc/status.proto not found under {root}; install googleapis-common-protos")
    return root


def tools_version() -> str:
    from importlib.metadata import version

    return version("grpcio-tools")


def generate(out: Path) -> list[Path]:
    """Run protoc into `out`; return the generated files, relative to `out`."""
    protos = proto_files()
    if not protos:
        raise SystemExit(f"no .proto files under {PROTOS / PACKAGE}")
    cmd = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        f"-I{PROTOS}",
        f"-I{googleapis_include()}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        f"--pyi_out={out}",
        *[str(p) for p in protos],
    ]
    subprocess.run(cmd, check=True, cwd=ROOT)
    return sorted(p.relative_to(out) for p in (out / PACKAGE).iterdir() if p.name.endswith(GENERATED_SUFFIXES))


def committed() -> list[Path]:
    return sorted(p.relative_to(OUT) for p in (OUT / PACKAGE).iterdir() if p.name.endswith(GENERATED_SUFFIXES))


def check() -> list[str]:
    """Differences between the committed stubs and a fresh generation (empty when current)."""
    problems = []
    with tempfile.TemporaryDirectory() as tmp:
        fresh = generate(Path(tmp))
        have = committed()
        for extra in sorted(set(have) - set(fresh)):
            problems.append(f"{extra}: committed but no longer generated")
        for rel in fresh:
            new, old = Path(tmp) / rel, OUT / rel
            if not old.exists():
                problems.append(f"{rel}: generated but not committed")
            elif not filecmp.cmp(new, old, shallow=False):
                diff = difflib.unified_diff(
                    old.read_text().splitlines(),
                    new.read_text().splitlines(),
                    f"committed/{rel}",
                    f"generated/{rel}",
                    lineterm="",
                    n=1,
                )
                problems.append(f"{rel} differs:\n" + "\n".join(list(diff)[:20]))
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="compare instead of writing; exit 1 on drift")
    args = parser.parse_args(argv)
    if args.check:
        problems = check()
        if problems:
            print("\n".join(problems))
            print(f"stubs drifted from protos/ (grpcio-tools {tools_version()}): run `make protos` and commit")
            return 1
        print(f"stubs match protos/ (grpcio-tools {tools_version()})")
        return 0
    for rel in generate(OUT):
        print(f"wrote clients/{rel}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
