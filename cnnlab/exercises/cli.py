"""``cnnlab exercise list | start NAME [--dir D] | check FILE [--json]`` (a CLI plugin module)."""
from __future__ import annotations

import argparse
import json
import sys

from cnnlab.utils.argtypes import positive_float


def _list(args) -> int:
    from cnnlab import exercises

    for name, title, source in exercises.describe():
        print(f"{name:27s} {title}\n{'':27s}   from: {source}")
    return 0


def _start(args) -> int:
    from cnnlab import exercises

    try:
        path = exercises.start(args.name, args.dir, overwrite=args.force)
    except (ValueError, FileExistsError) as err:
        print(f"cnnlab exercise start: error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {path}\nfill in the TODOs, then run: cnnlab exercise check {path}")
    return 0


def _check(args) -> int:
    from cnnlab import exercises

    try:
        result = exercises.check(args.file, name=args.name, timeout=args.timeout)
    except (ValueError, FileNotFoundError) as err:
        print(f"cnnlab exercise check: error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(result.to_json(), indent=1) if args.json else result.report())
    return 0 if result.passed else 1


def add_commands(sub) -> None:
    """Add the ``exercise`` command to the CLI's sub-parsers."""
    p = sub.add_parser("exercise", help="tutorial exercises: list, start a skeleton, check your answer",
                       description="The tutorials' exercises with an auto-grader. Exit status of check: "
                                   "0 all cases pass, 1 some fail (or the time/memory limit ended it), "
                                   "2 usage error.",
                       epilog="example:\n  cnnlab exercise start maxpool --dir mywork\n"
                              "  cnnlab exercise check mywork/maxpool.py",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    ex_sub = p.add_subparsers(dest="exercise_command", metavar="{list,start,check}", required=True)
    p_list = ex_sub.add_parser("list", help="list the exercises and their tutorial sections")
    p_list.set_defaults(func=_list)
    p_start = ex_sub.add_parser("start", help="write the skeleton of exercise NAME")
    p_start.add_argument("name", help="exercise name (see: cnnlab exercise list)")
    p_start.add_argument("--dir", default=".", help="folder to write NAME.py into (default: .)")
    p_start.add_argument("--force", action="store_true", help="overwrite an existing file")
    p_start.set_defaults(func=_start)
    p_check = ex_sub.add_parser("check", help="grade FILE in a separate, time- and memory-limited process")
    p_check.add_argument("file", help="your exercise file (written by start, then filled in)")
    p_check.add_argument("--name", default=None, help="exercise name (default: read from the file's header)")
    p_check.add_argument("--timeout", type=positive_float, default=None, help="wall-clock seconds (default: per exercise)")
    p_check.add_argument("--json", action="store_true", help="print the result as JSON for tools")
    p_check.set_defaults(func=_check)
