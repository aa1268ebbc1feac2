"""The ``spine`` command.

Each subcommand is registered by one ``_add_<command>(subparsers)`` function that defines
its options and sets ``func``: called with the parsed arguments, it returns the exit status
(None counts as 0). Commands implemented elsewhere (broker, ping, status, pair, supervise,
bench) import their module only when run, so ``spine keys`` never loads the broker, and a
missing module is reported in one line. Every SpineError (and OSError) that reaches the top
is printed as ``spine: error: <message>`` with exit status 2, never as a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

from spine import paths
from spine.errors import CommandUnavailable, SpineError, WhitelistError
from spine.security import keys, whitelist

log = logging.getLogger("spine.cli")

Handler = Callable[[argparse.Namespace], int | None]
EXIT_ERROR = 2
EXIT_INTERRUPTED = 130
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


# --------------------------------------------------------------------------------------
# Shared options and argument types
# --------------------------------------------------------------------------------------

def positive_int(text: str) -> int:
    """Parse a whole number greater than zero."""
    if not text.isdigit() or int(text) == 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number greater than 0")
    return int(text)


def positive_float(text: str) -> float:
    """Parse a finite number of seconds greater than zero."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds greater than 0")
    return value


def _keys_dir_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--keys-dir", type=Path, metavar="D",
                        help="key directory (default: $SPINE_KEYS_DIR, "
                             "$STATE_DIRECTORY/keys, else ./keys)")


def _connection_options(parser: argparse.ArgumentParser, *, name: bool = True) -> None:
    """The options every client command uses to find the broker and its own identity."""
    if name:
        parser.add_argument("--name", default="cli",
                            help="identity in the key directory to connect as (default: cli)")
    _keys_dir_option(parser)
    parser.add_argument("--runtime-dir", type=Path, metavar="D",
                        help="where the broker's ipc sockets are (default: $SPINE_RUNTIME_DIR, "
                             "$RUNTIME_DIRECTORY, $XDG_RUNTIME_DIR/spine)")
    parser.add_argument("--tcp", metavar="HOST:PORT",
                        help="reach the broker over TCP at this control port instead of ipc")


# --------------------------------------------------------------------------------------
# Lazily imported commands
# --------------------------------------------------------------------------------------

def _import_command(command: str, module: str, attribute: str) -> Callable[..., Any]:
    """Import ``module`` and return its ``attribute``, or raise CommandUnavailable."""
    try:
        loaded = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name and (module == exc.name or module.startswith(exc.name + ".")):
            raise CommandUnavailable(f"'spine {command}' is not available in this installation: "
                                     f"module {module} is missing; reinstall spine "
                                     "(pip install -e .)") from None
        raise CommandUnavailable(f"'spine {command}' needs the Python module {exc.name!r}, "
                                 "which is not installed; reinstall spine with its "
                                 "dependencies (pip install -e .)") from None
    target = getattr(loaded, attribute, None)
    if not callable(target):
        raise CommandUnavailable(f"'spine {command}' is not available: {module} has no "
                                 f"{attribute}(); this installation of spine is incomplete")
    return target


def _lazy(command: str, module: str, function: str) -> Handler:
    """A handler that imports ``module`` when run and calls ``function(args)``."""
    def run(args: argparse.Namespace) -> int | None:
        return _import_command(command, module, function)(args)
    run.__doc__ = f"Run {module}.{function}(args)."
    return run


# --------------------------------------------------------------------------------------
# spine keys
# --------------------------------------------------------------------------------------

def _print_identity(keys_dir: Path, pair: keys.KeyPair) -> None:
    print(f"public key   {pair.public.decode('ascii')}")
    print(f"public file  {keys.public_path(keys_dir, pair.name)}")
    print(f"secret file  {keys.secret_path(keys_dir, pair.name)}  (mode 0600; never copy it)")


def _keys_init(args: argparse.Namespace) -> int:
    keys_dir = paths.keys_dir(args.keys_dir)
    existed = keys.secret_path(keys_dir, args.name).exists()
    pair = keys.load_or_create(keys_dir, args.name)
    if existed:
        print(f"identity {args.name!r} already existed in {keys_dir}; keys unchanged")
    else:
        print(f"created identity {args.name!r} in {keys_dir}")
    _print_identity(keys_dir, pair)
    if not existed:
        print(f"admit it with: spine whitelist add {keys.public_path(keys_dir, args.name)} "
              f"{args.name} KIND")
    return 0


def _keys_show(args: argparse.Namespace) -> int:
    keys_dir = paths.keys_dir(args.keys_dir)
    pair = keys.load_keypair(keys_dir, args.name)
    print(f"identity {args.name!r} in {keys_dir}")
    _print_identity(keys_dir, pair)
    return 0


def _add_keys(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("keys", help="create and show persistent CURVE identities",
                                   description="Persistent CURVE identities (ZPL certificates).")
    actions = parser.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    init = actions.add_parser("init", help="load the identity NAME, creating it if missing",
                              description="Load the identity NAME, generating its keypair only "
                                          "if it does not exist yet. Never replaces a key.")
    init.add_argument("name", metavar="NAME")
    _keys_dir_option(init)
    init.set_defaults(func=_keys_init)
    show = actions.add_parser("show", help="print the public key and files of NAME",
                              description="Validate and print the identity NAME.")
    show.add_argument("name", metavar="NAME")
    _keys_dir_option(show)
    show.set_defaults(func=_keys_show)
    rotate = actions.add_parser("rotate", help="give NAME a new key, make-before-break",
                                description="Stage a new keypair for NAME and admit it beside the "
                                            "current key; the broker drops the old key once it "
                                            "has seen the new one.")
    rotate.add_argument("name", metavar="NAME")
    rotate.add_argument("--wait", type=positive_float, metavar="SECONDS",
                        help="wait until the broker has seen the new key (exit 1 if not)")
    rotate.add_argument("--offline", action="store_true",
                        help="the component is stopped: install the new key now; it connects "
                             "with it at its next start")
    _keys_dir_option(rotate)
    rotate.set_defaults(func=_lazy("keys rotate", "spine.security.lifecycle_cli", "run_rotate"))


# --------------------------------------------------------------------------------------
# spine whitelist
# --------------------------------------------------------------------------------------

def _public_key_from(text: str) -> bytes:
    """A Z85 key given literally, or read from a certificate file."""
    if Path(text).is_file():
        return keys.load_public(Path(text))
    if len(text) != 40:
        raise WhitelistError(f"{text!r} is neither a 40-character Z85 public key nor "
                                       "a certificate file (NAME.key)")
    return keys.check_public_key(text)


def _whitelist_add(args: argparse.Namespace) -> int:
    keys_dir = paths.keys_dir(args.keys_dir)
    source = whitelist.check_source(args.source) if args.source is not None else None
    entry = whitelist.Entry(_public_key_from(args.key), keys.check_name(args.name),
                            whitelist.parse_kind(args.kind), source)
    whitelist.add_entry(keys_dir, entry, replace=args.replace)
    print(f"admitted {entry.name} ({entry.kind_name()}) from {entry.source or 'anywhere'} "
          f"with key {entry.public_key.decode('ascii')} in {keys_dir / whitelist.FILENAME}")
    return 0


def _whitelist_remove(args: argparse.Namespace) -> int:
    keys_dir = paths.keys_dir(args.keys_dir)
    entry = whitelist.remove_entry(keys_dir, args.name)
    print(f"removed {entry.name} ({entry.kind_name()}) with key "
          f"{entry.public_key.decode('ascii')} from {keys_dir / whitelist.FILENAME}")
    return 0


def _whitelist_list(args: argparse.Namespace) -> int:
    keys_dir = paths.keys_dir(args.keys_dir)
    entries = whitelist.read_entries(keys_dir)
    if args.json:
        print(json.dumps([{"public_key": e.public_key.decode("ascii"), "name": e.name,
                           "kind": e.kind_name(), "source": e.source} for e in entries],
                         indent=2))
        return 0
    if not entries:
        print(f"no entries in {keys_dir / whitelist.FILENAME}: every key is refused")
        return 0
    rows = [("NAME", "KIND", "FROM", "PUBLIC KEY")]
    rows += [(e.name, e.kind_name(), e.source or "any", e.public_key.decode("ascii"))
             for e in entries]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[3])
    return 0


def _add_whitelist(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("whitelist", help="admit, remove and list component keys",
                                   description="Edit whitelist.txt in the key directory "
                                               "(atomically, under a lock).")
    actions = parser.add_subparsers(dest="whitelist_command", required=True, metavar="ACTION")
    add = actions.add_parser("add", help="admit a public key as NAME of kind KIND",
                             description="Admit a public key as instance NAME of kind KIND.")
    add.add_argument("key", metavar="PUBLIC_KEY_OR_CERT_FILE",
                     help="a Z85 public key (40 characters) or a certificate file (NAME.key); "
                          "a key that starts with '-' goes after '--', options before it")
    add.add_argument("name", metavar="NAME", help="the instance name the broker stamps")
    add.add_argument("kind", metavar="KIND", help="a ComponentID, e.g. MEMORY_SYSTEM")
    add.add_argument("--from", dest="source", metavar="SRC",
                     help="only admit connections from SRC: 'ipc', an IP address or a CIDR network")
    add.add_argument("--replace", action="store_true",
                     help="replace an entry with the same key or name instead of refusing")
    _keys_dir_option(add)
    add.set_defaults(func=_whitelist_add)
    remove = actions.add_parser("remove", help="remove the entry NAME (or with that key)",
                                description="Remove an entry by instance name or public key; "
                                            "the broker refuses it from its next connection.")
    remove.add_argument("name", metavar="NAME")
    _keys_dir_option(remove)
    remove.set_defaults(func=_whitelist_remove)
    revoke = actions.add_parser("revoke", help="revoke every key of NAME, for good",
                                description="Put NAME's keys on the permanent revocation list "
                                            "(revoked.txt) and out of the whitelist; the broker "
                                            "stops routing them at once.")
    revoke.add_argument("name", metavar="NAME")
    _keys_dir_option(revoke)
    revoke.set_defaults(func=_lazy("whitelist revoke", "spine.security.lifecycle_cli",
                                   "run_revoke"))
    show = actions.add_parser("list", help="print the admitted identities",
                              description="Print the admitted identities.")
    show.add_argument("--json", action="store_true", help="print a JSON array")
    _keys_dir_option(show)
    show.set_defaults(func=_whitelist_list)


# --------------------------------------------------------------------------------------
# Commands implemented in their own modules (imported when run)
# --------------------------------------------------------------------------------------

def _add_broker(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("broker", help="run the broker in the foreground",
                                   description="Run the broker in the foreground on built-in "
                                               "defaults, a TOML file, the environment and flags.")
    parser.add_argument("--config", type=Path, metavar="FILE",
                        help="TOML file with a [broker] table (default: "
                             "$CONFIGURATION_DIRECTORY/broker.toml if present)")
    _keys_dir_option(parser)
    parser.add_argument("--runtime-dir", type=Path, metavar="D",
                        help="where the ipc sockets go (default: $SPINE_RUNTIME_DIR, "
                             "$RUNTIME_DIRECTORY, $XDG_RUNTIME_DIR/spine)")
    parser.add_argument("--state-dir", type=Path, metavar="D",
                        help="persisted state (default: $SPINE_STATE_DIR, $STATE_DIRECTORY, "
                             "./state)")
    parser.add_argument("--tcp", metavar="HOST:PORT",
                        help="also listen on TCP: control on PORT, data, events and pairing on "
                             "the next three ports")
    parser.add_argument("--log-level", choices=LOG_LEVELS, default="INFO")
    parser.set_defaults(func=_lazy("broker", "spine.broker.main", "run_broker"))


def _add_ping(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("ping", help="measure control-plane round trips to the broker",
                                   description="Send requests to the broker on the control plane "
                                               "and print each round trip, like ping(8).")
    parser.add_argument("-c", "--count", type=positive_int, metavar="COUNT",
                        help="stop after COUNT replies (default: until interrupted)")
    parser.add_argument("-i", "--interval", type=positive_float, default=1.0,
                        metavar="INTERVAL", help="seconds between requests (default: 1)")
    _connection_options(parser)
    parser.set_defaults(func=_lazy("ping", "spine.client.ping", "run_ping"))


def _add_status(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("status", help="print the broker's counters and components",
                                   description="Ask the broker for its per-plane counters and "
                                               "the components it knows.")
    parser.add_argument("--json", action="store_true", help="print JSON")
    _connection_options(parser)
    parser.set_defaults(func=_lazy("status", "spine.client.status", "run_status"))


def _add_pair(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "pair", help="join the bus with an invite, or open a pairing window",
        description="'spine pair INVITE --name NAME --kind KIND' creates this component's "
                    "identity and pairs it using the invite the broker printed. 'spine pair "
                    "open' asks the broker (as a whitelisted CLI_CONTROLLER) to open a window.",
        usage="spine pair INVITE --name NAME --kind KIND [options]\n"
              "       spine pair open [--name NAME] [--admit KIND[,KIND...]] [options]")
    parser.add_argument("invite", metavar="INVITE|open",
                        help="the invite from the broker's log, or 'open'")
    parser.add_argument("--name", help="identity to create (INVITE) or to connect as "
                                       "(open; default: cli)")
    parser.add_argument("--kind", help="ComponentID of the new component, e.g. MEMORY_SYSTEM")
    parser.add_argument("--admit", metavar="KIND[,KIND...]",
                        help="open: the kinds the window admits (default: every kind but "
                             "CLI_CONTROLLER; name CLI_CONTROLLER to pair an administrator)")
    _connection_options(parser, name=False)
    run_pair = _lazy("pair", "spine.security.pair_cli", "run_pair")

    def run(args: argparse.Namespace) -> int | None:
        """Check the options of the chosen form, set ``args.action``, run run_pair."""
        if args.invite == "open":
            args.action = "open"
            args.name = args.name or "cli"
        else:
            args.action = "join"
            if args.admit:
                parser.error("--admit belongs to 'spine pair open'")
            if not args.name or not args.kind:
                parser.error("pairing with an invite needs --name NAME and --kind KIND")
            keys.check_name(args.name)
            whitelist.parse_kind(args.kind)
        return run_pair(args)

    parser.set_defaults(func=run)


def _add_supervise(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("supervise", add_help=False,
                                   help="start configured components and keep them alive",
                                   description="Arguments go to spine.broker.supervisor "
                                               "(see 'spine supervise --help').")
    parser.set_defaults(func=_supervise, passthrough=True)


def _supervise(args: argparse.Namespace) -> int:
    return _import_command("supervise", "spine.broker.supervisor", "main")(args.rest)


def bench_names() -> list[str]:
    """The benchmarks ``spine bench NAME`` runs (``spine.bench.BENCHMARKS``; not its helper modules), sorted."""
    import spine.bench
    return sorted(spine.bench.BENCHMARKS)


def available_benchmarks() -> dict[str, str]:
    """Name → first docstring line of every benchmark that imports and has a main()."""
    found = {}
    for name in bench_names():
        try:
            module = importlib.import_module(f"spine.bench.{name}")
        except ImportError as exc:
            log.warning("benchmark %s cannot be imported: %s", name, exc)
            continue
        if callable(getattr(module, "main", None)):
            found[name] = ((module.__doc__ or "").strip().splitlines() or [""])[0]
    return found


def _run_bench(args: argparse.Namespace) -> int | None:
    if args.list:
        benchmarks = available_benchmarks()
        width = max((len(name) for name in benchmarks), default=0)
        for name, summary in benchmarks.items():
            print(f"{name.ljust(width)}  {summary}")
        return 0
    if args.name not in bench_names():
        what = f"no benchmark named {args.name!r}" if args.name else "name a benchmark"
        raise CommandUnavailable(f"{what}; available: {', '.join(available_benchmarks())} "
                                 "(spine bench --list describes them)")
    return _import_command(f"bench {args.name}", f"spine.bench.{args.name}", "main")(args.rest)


def _add_bench(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("bench", add_help=False, allow_abbrev=False,
                                   help="run a benchmark (spine bench --list)",
                                   usage="spine bench NAME [ARGS...] | spine bench --list",
                                   description="Run spine.bench.NAME with ARGS; "
                                               "'spine bench NAME --help' shows its options.")
    parser.add_argument("name", nargs="?", metavar="NAME")
    parser.add_argument("--list", action="store_true", help="list the benchmarks")

    def run(args: argparse.Namespace) -> int | None:
        """Help for ``spine bench -h``; otherwise list or run the named benchmark."""
        if args.name is None and not args.list and {"-h", "--help"} & set(args.rest):
            parser.print_help()
            return 0
        return _run_bench(args)

    parser.set_defaults(func=run, passthrough=True)


# --------------------------------------------------------------------------------------
# The dispatcher
# --------------------------------------------------------------------------------------

COMMANDS: tuple[Callable[[argparse._SubParsersAction], None], ...] = (
    _add_broker,
    _add_keys,
    _add_whitelist,
    _add_pair,
    _add_ping,
    _add_status,
    _add_supervise,
    _add_bench,
)


def _version() -> str:
    try:
        return metadata.version("spine")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every registered subcommand."""
    parser = argparse.ArgumentParser(
        prog="spine", description="spine: a CURVE-authenticated ZeroMQ message bus.",
        formatter_class=lambda prog: argparse.HelpFormatter(prog, max_help_position=28))
    parser.add_argument("--version", action="version", version=f"spine {_version()}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for register in COMMANDS:
        register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the ``spine`` command line and return its exit status."""
    parser = build_parser()
    args, rest = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    if getattr(args, "passthrough", False):
        args.rest = rest  # the command parses these itself (and configures its own logging)
    else:
        if rest:
            parser.error(f"unrecognized arguments: {' '.join(rest)}")
        if not logging.getLogger().handlers:
            logging.basicConfig(level=getattr(args, "log_level", "WARNING"),
                                stream=sys.stderr, format=LOG_FORMAT)
    try:
        status = args.func(args)
    except (SpineError, OSError) as exc:
        log.debug("%s failed", args.command, exc_info=True)
        print(f"spine: error: {_describe(exc)}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    return 0 if status is None else int(status)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    return str(exc)
