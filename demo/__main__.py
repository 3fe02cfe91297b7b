"""`python -m demo` (what `make demo` runs): arguments, then the run; errors are one line, exit 1."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .chain import DemoSpec
from .processes import DemoError
from .run import console, run_demo


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    defaults = DemoSpec()
    parser = argparse.ArgumentParser(prog="make demo", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=Path("demo-output"), help="working folder (emptied first)")
    parser.add_argument("--stores", type=int, default=defaults.stores)
    parser.add_argument("--customers", type=int, default=defaults.customers, help="loyalty customers per store")
    parser.add_argument("--days", type=int, default=defaults.days, help="days of history")
    parser.add_argument("--rounds", type=int, default=defaults.rounds, help="federation rounds")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--mqtt", default=None,
                        help="use this broker (anonymous, e.g. mqtt://127.0.0.1:1883) instead of a private one")
    parser.add_argument("--console-port", type=int, default=0, help="default: a free port")
    parser.add_argument("--keep-running", action="store_true", help="leave everything up until Ctrl-C")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.stores < 2:
        console.print("demo: --stores must be at least 2 (a federation needs two stores)", style="red")
        return 1
    spec = DemoSpec(args.stores, args.customers, args.days, args.rounds, args.seed)
    try:
        run_demo(spec, args.out, broker_url=args.mqtt, console_port=args.console_port, keep_running=args.keep_running)
    except DemoError as exc:
        console.print(f"demo: {exc}", style="red", markup=False, highlight=False)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
