"""The ``hermite-limit`` command line.

Every subcommand writes machine-readable JSON and PNGs into ``--out``. Bad input gives a one-line
error on stderr and exit status 2; a verification with a failed check exits 1.
"""

from __future__ import annotations

import argparse
import sys
import time

EXIT_BAD_INPUT = 2
EXIT_CHECK_FAILED = 1


def _verify(args) -> int:
    from .checks import VerifyConfig, run_checks, write_report

    overrides = {"seed": args.seed, "quick": True if args.quick else None}
    if args.config:
        config = VerifyConfig.from_toml(args.config, **overrides)
    else:
        config = VerifyConfig(**{k: v for k, v in overrides.items() if v is not None})
    start = time.perf_counter()
    records = run_checks(config, progress=not args.no_progress)
    meta = {"config": str(config), "seconds": round(time.perf_counter() - start, 1)}
    path = write_report(records, args.out, meta)
    failed = [r.name for r in records if not r.passed]
    print(f"{len(records) - len(failed)}/{len(records)} checks passed; report: {path}")
    for name in failed:
        print(f"FAILED: {name}")
    return EXIT_CHECK_FAILED if failed else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hermite-limit",
        description="Where recursive retraining of a diffusion model ends up: closed forms, spectra, checks.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    verify = sub.add_parser(
        "verify",
        help="check every theorem numerically and write a report",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Run every check; write DIR/report.json, DIR/report.md and PNGs. Exit 0 only if all pass.",
        epilog="examples:\n  hermite-limit verify --out verify-out\n  hermite-limit verify --quick --out /tmp/v --seed 3\n"
        "  hermite-limit verify --config my.toml --out v   (keys: alphas, t0, generations, seed, quick)",
    )
    verify.add_argument("--out", required=True, metavar="DIR", help="output folder (created if missing)")
    verify.add_argument("--quick", action="store_true", help="smaller sizes (under two minutes)")
    verify.add_argument("--seed", type=int, default=None, help="PRNG seed (default 0)")
    verify.add_argument("--config", metavar="FILE", help="TOML file with the same keys as the options")
    verify.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    verify.set_defaults(run=_verify)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except ValueError as exc:
        print(f"hermite-limit {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
