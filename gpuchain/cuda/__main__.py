"""``python -m gpuchain.cuda compile --arch sm_80 sm_90 [--kernel-dir DIR]``
``python -m gpuchain.cuda info``  (NVML device telemetry)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gpuchain.cuda")
    sub = parser.add_subparsers(dest="cmd", required=True)
    comp = sub.add_parser("compile", help="NVRTC-compile every kernel; fail on errors or spills")
    comp.add_argument("--arch", nargs="+", default=["sm_80", "sm_90"], help="e.g. sm_80 sm_90")
    comp.add_argument("--kernel-dir", type=Path, default=None, help="directory of .cu files")
    comp.add_argument("--jobs", type=int, default=2, help="parallel NVRTC compiles")
    comp.add_argument("--quiet", action="store_true", help="no per-kernel table")
    sub.add_parser("info", help="print NVML device telemetry as JSON")
    args = parser.parse_args(argv)

    if args.cmd == "compile":
        from gpuchain.cuda import compile as compile_check

        return compile_check.run(args.kernel_dir, tuple(args.arch), args.jobs, args.quiet)
    from gpuchain.cuda import telemetry

    print(
        json.dumps(
            {"status": telemetry.telemetry_status(), "devices": telemetry.device_info()}, indent=2
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
