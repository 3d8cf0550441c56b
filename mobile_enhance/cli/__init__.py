"""The ``mobile-enhance`` command: a thin layer of subcommands over the Python API.

Each subcommand is a module with ``NAME``, ``HELP``, ``define_flags(flag_values)`` and
``main(flag_values, args) -> int``. Flags are absl flags, parsed per subcommand, so
``mobile-enhance SUBCOMMAND --help`` lists only that subcommand's flags.

Mistakes of the user (:class:`mobile_enhance.errors.UserError`, a bad flag) print one
line to stderr and exit with status 2; no traceback reaches the user for them.
"""

from __future__ import annotations

import sys

from absl import flags

from mobile_enhance.cli import bench_cmd, enhance_cmd, evaluate_cmd, export_cmd, import_cmd, models_cmd, train_cmd
from mobile_enhance.errors import UnknownNameError, UserError

PROG = "mobile-enhance"
COMMANDS = {module.NAME: module for module in (models_cmd, train_cmd, import_cmd, export_cmd, bench_cmd, enhance_cmd, evaluate_cmd)}


def usage() -> str:
    width = max(len(name) for name in COMMANDS)
    lines = [f"usage: {PROG} COMMAND [--flags]", "", "commands:"]
    lines += [f"  {name:<{width}}  {module.HELP}" for name, module in COMMANDS.items()]
    lines += ["", f"`{PROG} COMMAND --help` lists a command's flags."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI on ``argv`` (``sys.argv`` by default); return the exit status."""
    argv = list(sys.argv if argv is None else argv)
    if len(argv) < 2 or argv[1] in ("-h", "--help", "help"):
        print(usage())
        return 0 if len(argv) >= 2 else 2
    name = argv[1]
    try:
        if name not in COMMANDS:
            raise UnknownNameError("command", name, COMMANDS)
        module = COMMANDS[name]
        flag_values = flags.FlagValues()
        module.define_flags(flag_values)
        flags.DEFINE_boolean("help", False, "Show this command's flags.", flag_values=flag_values, short_name="h")
        try:
            args = flag_values([f"{PROG} {name}", *argv[2:]])[1:]
        except flags.Error as error:
            raise UserError(str(error)) from None
        if flag_values["help"].value:
            print(f"usage: {PROG} {name} [--flags]\n\n{module.HELP}\n")
            print(flag_values.module_help(module.__name__) or "(no flags)")
            return 0
        return int(module.main(flag_values, args) or 0)
    except UserError as error:
        print(f"{PROG} {name}: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print(f"{PROG} {name}: interrupted", file=sys.stderr)
        return 130


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
