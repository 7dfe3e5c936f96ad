"""`eqprop-verify`: the suite's entry points as subcommands of one console command.

    eqprop-verify run --track 2 --badges out/b     # = python -m tracks.run …
    eqprop-verify report results --badges out/b    # = python -m tracks.report …
    eqprop-verify sweep --seeds 0-9 --group A      # = python -m tracks.sweep …
    eqprop-verify tables results/track-25.json     # = python -m tracks.tables …
    eqprop-verify fetch mnist --root DATA          # = python -m eqprop_core.data fetch …
    eqprop-verify bench --quick                    # = python -m benchmarks …

Every subcommand takes `--help`; the `python -m` forms keep working. Exit status is the
subcommand's (0 success, 1 a failure it measured, 2 bad usage).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Sequence

from tracks.provenance import provenance

PROG = "eqprop-verify"
# subcommand: (module whose main(argv, prog) runs it, the argv prefix it needs, what it does)
COMMANDS: dict[str, tuple[str, tuple[str, ...], str]] = {
    "run": ("tracks.run", (), "run tracks and write their JSON (and badges, certificate)"),
    "report": ("tracks.report", (), "badges and certificate from a results directory"),
    "sweep": ("tracks.sweep", (), "run tracks at many seeds: the track x seed table"),
    "tables": ("tracks.tables", (), "markdown tables of a dataset-benchmark track's JSON"),
    "fetch": ("eqprop_core.data", ("fetch",), "download a dataset into the data root"),
    "bench": ("benchmarks.harness", (), "the performance benchmarks, side by side"),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [f"usage: {PROG} COMMAND [options]   ({PROG} COMMAND --help for its options)", "",
             "Property-based verification of Equilibrium Propagation: every check has a "
             "negative control that must fail.", "", "commands:"]
    lines += [f"  {name:<{width}}  {text}" for name, (_, _, text) in COMMANDS.items()]
    lines += ["", f"  {'--version':<{width}}  the verifier's version and commit"]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(usage(), file=sys.stdout if args else sys.stderr)
        return 0 if args else 2
    if args[0] == "--version":
        found = provenance()
        print(f"{PROG} {found['eqprop_verify']}"
              + (f" (commit {found['eqprop_verify_commit']})"
                 if "eqprop_verify_commit" in found else ""))
        return 0
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        print(f"{PROG}: error: unknown command {name!r}; choose one of "
              f"{', '.join(COMMANDS)} ({PROG} --help)", file=sys.stderr)
        return 2
    module, prefix, _ = COMMANDS[name]
    run: Callable[..., int] = importlib.import_module(module).main
    if prefix:  # `fetch NAME` is `python -m eqprop_core.data fetch NAME`
        return run([*prefix, *rest], prog=PROG)
    return run(rest, prog=f"{PROG} {name}")


if __name__ == "__main__":
    sys.exit(main())
