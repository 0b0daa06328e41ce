#!/usr/bin/env python3
"""`make build-aws`: the AWS build of every function, checked.

Runs `sam build` (cargo-lambda, release profile, cross-compiled with zig for
the architecture asked: `ARCH=arm64` by default, as the template deploys),
then reads each function's bootstrap and prints its ELF machine and size,
checked against what the template declares. Exits non-zero when a bootstrap
is missing or built for another architecture. Sizes over the 6 MB target
are reported (see docs/measurements.md, "AWS build").

Runs under .tools/venv/bin/python; SAM, cargo-lambda and zig are in that venv.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".tools" / "venv" / "bin"
TARGET_BYTES = 6 * 1024 * 1024
MACHINES = {0x3E: "x86_64", 0xB7: "arm64"}


def elf_machine(path: Path) -> str:
    head = path.read_bytes()[:20]
    if head[:4] != b"\x7fELF":
        return "not ELF"
    little = head[5] == 1
    machine = int.from_bytes(head[18:20], "little" if little else "big")
    return MACHINES.get(machine, hex(machine))


def main() -> int:
    arch = os.environ.get("ARCH", "arm64")
    env = dict(os.environ, PATH=f"{VENV_BIN}:{os.environ['PATH']}")
    started = time.monotonic()
    build = subprocess.run(
        [str(VENV_BIN / "sam"), "build", "--beta-features",
         "--template-file", str(ROOT / "template.yaml"),
         "--build-dir", str(ROOT / ".aws-sam" / f"build-{arch}"),
         "--parameter-overrides", f"Architecture={arch}"],
        cwd=ROOT, env=env,
    )
    if build.returncode != 0:
        print(f"sam build failed ({build.returncode})", file=sys.stderr)
        return build.returncode
    print(f"\nsam build for {arch} took {time.monotonic() - started:.0f} s\n")
    print("| function | machine | bootstrap bytes | MB | ≤ 6 MB |")
    print("|---|---|---|---|---|")
    failed = False
    functions = sorted((ROOT / ".aws-sam" / f"build-{arch}").glob("*Function"))
    if not functions:
        print("no function was built", file=sys.stderr)
        return 1
    for function in functions:
        bootstrap = function / "bootstrap"
        if not bootstrap.exists():
            print(f"| {function.name} | missing | - | - | - |")
            failed = True
            continue
        machine = elf_machine(bootstrap)
        size = bootstrap.stat().st_size
        failed |= machine != arch
        print(f"| {function.name} | {machine} | {size} | {size / 1048576:.1f} | "
              f"{'yes' if size <= TARGET_BYTES else 'no'} |")
    if failed:
        print(f"\na bootstrap is missing or not built for {arch}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
