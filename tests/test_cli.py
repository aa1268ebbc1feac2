"""The spine command: keys and whitelist end to end in subprocesses, the dispatcher in-process."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import pkgutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import zmq

import spine.bench
from spine import cli
from spine.security import keys, whitelist

ENV_VARS = ("SPINE_KEYS_DIR", "SPINE_RUNTIME_DIR", "SPINE_STATE_DIR", "RUNTIME_DIRECTORY",
            "STATE_DIRECTORY", "CONFIGURATION_DIRECTORY")


def run_spine(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``python -m spine ARGS`` in ``cwd`` with none of spine's variables set."""
    env = {k: v for k, v in os.environ.items() if k not in ENV_VARS}
    return subprocess.run([sys.executable, "-m", "spine", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60)


def field(output: str, label: str) -> str:
    """The value printed after ``label`` on its own line."""
    return next(line[len(label):].strip() for line in output.splitlines()
                if line.startswith(label))


def assert_clean_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode == 2, result
    assert result.stderr.startswith("spine: error: "), result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in result.stderr


# --------------------------------------------------------------------------------------
# End to end, in subprocesses
# --------------------------------------------------------------------------------------

def test_keys_init_creates_then_keeps_and_show_prints_the_same_key(tmp_path):
    kd = tmp_path / "keys"
    first = run_spine("keys", "init", "memory-1", "--keys-dir", str(kd), cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "created identity 'memory-1'" in first.stdout
    public = field(first.stdout, "public key")
    assert public == keys.load_keypair(kd, "memory-1").public.decode()
    assert str(kd / "memory-1.key_secret") in first.stdout
    assert stat.S_IMODE((kd / "memory-1.key_secret").stat().st_mode) == 0o600

    again = run_spine("keys", "init", "memory-1", "--keys-dir", str(kd), cwd=tmp_path)
    assert again.returncode == 0 and "already existed" in again.stdout
    assert field(again.stdout, "public key") == public

    shown = run_spine("keys", "show", "memory-1", "--keys-dir", str(kd), cwd=tmp_path)
    assert shown.returncode == 0 and field(shown.stdout, "public key") == public


def test_keys_dir_defaults_to_spine_keys_dir_then_dot_keys(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ENV_VARS}
    env["SPINE_KEYS_DIR"] = str(tmp_path / "from-env")
    result = subprocess.run([sys.executable, "-m", "spine", "keys", "init", "a"], cwd=tmp_path,
                            env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "from-env" / "a.key_secret").exists()
    assert run_spine("keys", "init", "b", cwd=tmp_path).returncode == 0
    assert (tmp_path / "keys" / "b.key_secret").exists()


def test_whitelist_add_list_remove(tmp_path):
    kd = tmp_path / "keys"
    keys.create_keypair(kd, "physics")
    literal = zmq.curve_keypair()[0].decode()

    by_file = run_spine("whitelist", "add", str(kd / "physics.key"), "physics", "physics_engine",
                        "--from", "ipc", "--keys-dir", str(kd), cwd=tmp_path)
    assert by_file.returncode == 0, by_file.stderr
    by_key = run_spine("whitelist", "add", "--from", "10.0.0.0/24", "--keys-dir", str(kd),
                       "--", literal, "agent", "GEMINI_AGENT", cwd=tmp_path)
    assert by_key.returncode == 0, by_key.stderr

    listed = run_spine("whitelist", "list", "--json", "--keys-dir", str(kd), cwd=tmp_path)
    assert json.loads(listed.stdout) == [
        {"public_key": keys.load_keypair(kd, "physics").public.decode(), "name": "physics",
         "kind": "PHYSICS_ENGINE", "source": "ipc"},
        {"public_key": literal, "name": "agent", "kind": "GEMINI_AGENT",
         "source": "10.0.0.0/24"},
    ]
    table = run_spine("whitelist", "list", "--keys-dir", str(kd), cwd=tmp_path)
    assert "physics" in table.stdout and literal in table.stdout

    removed = run_spine("whitelist", "remove", "physics", "--keys-dir", str(kd), cwd=tmp_path)
    assert removed.returncode == 0 and "removed physics" in removed.stdout
    assert [e.name for e in whitelist.read_entries(kd)] == ["agent"]


@pytest.mark.parametrize("args,fragments", [
    (["keys", "show", "ghost"], ["spine keys init ghost"]),
    (["keys", "init", "bad/name"], ["identity name"]),
    (["whitelist", "add", "not-a-key", "x", "ORCHESTRATOR"], ["neither a 40-character"]),
    (["whitelist", "add", "k" * 40, "x", "WARP_DRIVE"], ["unknown component kind"]),
    (["whitelist", "add", "k" * 40, "x", "ORCHESTRATOR", "--from", "mars"], ["source pin"]),
    (["whitelist", "remove", "ghost"], ["no whitelist"]),
])
def test_bad_input_is_one_error_line_and_exit_2(tmp_path, args, fragments):
    result = run_spine(*args, "--keys-dir", str(tmp_path / "keys"), cwd=tmp_path)
    assert_clean_error(result, *fragments)


def test_group_readable_secret_key_is_refused_with_the_fix(tmp_path):
    kd = tmp_path / "keys"
    keys.create_keypair(kd, "x")
    os.chmod(kd / "x.key_secret", 0o640)
    result = run_spine("keys", "init", "x", "--keys-dir", str(kd), cwd=tmp_path)
    assert_clean_error(result, "chmod 600")


def test_duplicate_whitelist_add_is_refused(tmp_path):
    kd = tmp_path / "keys"
    key = zmq.curve_keypair()[0].decode()
    # "--": a Z85 key may start with "-", which would otherwise read as an option
    assert run_spine("whitelist", "add", "--keys-dir", str(kd), "--", key, "a", "ORCHESTRATOR",
                     cwd=tmp_path).returncode == 0
    again = run_spine("whitelist", "add", "--keys-dir", str(kd), "--", key, "b", "ORCHESTRATOR",
                      cwd=tmp_path)
    assert_clean_error(again, "already in the whitelist")


def test_a_corrupt_whitelist_is_reported_with_its_line(tmp_path):
    kd = tmp_path / "keys"
    kd.mkdir()
    (kd / "whitelist.txt").write_text("# fine\nbroken line\n")
    assert_clean_error(run_spine("whitelist", "list", "--keys-dir", str(kd), cwd=tmp_path),
                       "whitelist.txt:2:")


# --------------------------------------------------------------------------------------
# The dispatcher, in-process
# --------------------------------------------------------------------------------------

@pytest.fixture
def called(monkeypatch):
    """Replace the lazily imported commands by a recorder: [(module, attribute, argument)]."""
    calls: list[tuple[str, str, object]] = []

    def fake_import(command: str, module: str, attribute: str):
        def record(argument):
            calls.append((module, attribute, argument))
            return 0
        return record

    monkeypatch.setattr(cli, "_import_command", fake_import)
    return calls


def test_broker_options(called, tmp_path):
    assert cli.main(["broker", "--config", "b.toml", "--keys-dir", "k", "--runtime-dir", "r",
                     "--state-dir", "s", "--tcp", "0.0.0.0:5555", "--log-level", "DEBUG"]) == 0
    [(module, function, args)] = called
    assert (module, function) == ("spine.broker.main", "run_broker")
    assert (args.config, args.keys_dir, args.runtime_dir, args.state_dir) == \
        (Path("b.toml"), Path("k"), Path("r"), Path("s"))
    assert args.tcp == "0.0.0.0:5555" and args.log_level == "DEBUG"


def test_broker_defaults_leave_everything_to_the_configuration(called):
    assert cli.main(["broker"]) == 0
    args = called[0][2]
    assert (args.config, args.keys_dir, args.runtime_dir, args.state_dir, args.tcp) == \
        (None, None, None, None, None)
    assert args.log_level == "INFO"


def test_ping_options(called):
    assert cli.main(["ping", "-c", "3", "-i", "0.2", "--name", "op", "--tcp", "h:1"]) == 0
    [(module, function, args)] = called
    assert (module, function) == ("spine.client.ping", "run_ping")
    assert (args.count, args.interval, args.name, args.tcp) == (3, 0.2, "op", "h:1")
    assert cli.main(["ping"]) == 0
    assert (called[1][2].count, called[1][2].interval, called[1][2].name) == (None, 1.0, "cli")


@pytest.mark.parametrize("args", [["ping", "-c", "0"], ["ping", "-c", "x"],
                                  ["ping", "-i", "0"], ["ping", "-i", "nan"]])
def test_ping_refuses_nonsense_counts_and_intervals(called, args):
    with pytest.raises(SystemExit) as info:
        cli.main(args)
    assert info.value.code == 2 and called == []


def test_status_options(called):
    assert cli.main(["status", "--json", "--keys-dir", "k"]) == 0
    [(module, function, args)] = called
    assert (module, function) == ("spine.client.status", "run_status")
    assert args.json is True and args.keys_dir == Path("k") and args.name == "cli"


def test_pair_with_an_invite(called):
    assert cli.main(["pair", "INVITE-TEXT", "--name", "memory-1", "--kind", "MEMORY_SYSTEM",
                     "--keys-dir", "k"]) == 0
    [(module, function, args)] = called
    assert (module, function) == ("spine.security.pair_cli", "run_pair")
    assert (args.action, args.invite, args.name, args.kind) == \
        ("join", "INVITE-TEXT", "memory-1", "MEMORY_SYSTEM")


def test_pair_open(called):
    assert cli.main(["pair", "open"]) == 0
    args = called[0][2]
    assert (args.action, args.name) == ("open", "cli")


def test_pair_with_an_invite_needs_name_and_kind(called, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["pair", "INVITE-TEXT", "--name", "memory-1"])
    assert info.value.code == 2 and "--kind" in capsys.readouterr().err
    assert called == []


def test_pair_with_an_unknown_kind_is_refused_before_running(called, capsys):
    assert cli.main(["pair", "INVITE-TEXT", "--name", "m", "--kind", "WARP_DRIVE"]) == 2
    assert "unknown component kind" in capsys.readouterr().err and called == []


def test_supervise_gets_its_arguments_untouched(called):
    assert cli.main(["supervise", "--log-level", "DEBUG", "components.toml", "-h"]) == 0
    assert called == [("spine.broker.supervisor", "main",
                       ["--log-level", "DEBUG", "components.toml", "-h"])]


def test_bench_runs_the_named_module_with_the_rest(called):
    assert cli.main(["bench", "breaker", "--json", "out.json", "--iterations", "5"]) == 0
    assert called == [("spine.bench.breaker", "main",
                       ["--json", "out.json", "--iterations", "5"])]


def test_bench_list_names_the_benchmarks(capsys):
    assert cli.main(["bench", "--list"]) == 0
    names = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert {"breaker", "shm"} <= set(names)
    assert set(names) <= set(cli.bench_names())


def test_bench_list_holds_every_benchmark_and_no_helper_module(capsys):
    assert cli.main(["bench", "--list"]) == 0
    names = {line.split()[0] for line in capsys.readouterr().out.splitlines()}
    assert names == set(cli.bench_names()) == {"breaker", "clock_offset", "heartbeat_flood", "loop", "priority", "rtt", "shm",
                                               "throughput"}
    # every module or package of spine.bench with a main() is a benchmark; the rest are helpers
    for info in pkgutil.iter_modules(spine.bench.__path__):
        module = importlib.import_module(f"spine.bench.{info.name}")
        assert (info.name in names) == callable(getattr(module, "main", None)), info.name


@pytest.mark.parametrize("helper", ["procs", "pacing", "stats", "stamps", "common", "roles", "realtime", "harness"])
def test_a_helper_module_is_not_a_benchmark(helper, capsys):
    assert cli.main(["bench", helper]) == 2
    assert capsys.readouterr().err.startswith(f"spine: error: no benchmark named {helper!r}")


def test_unknown_benchmark_lists_the_available_ones(capsys):
    assert cli.main(["bench", "no-such-bench"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("spine: error: no benchmark named 'no-such-bench'")
    assert "breaker" in err and "shm" in err


def test_bench_without_a_name_is_an_error(capsys):
    assert cli.main(["bench"]) == 2
    assert "name a benchmark" in capsys.readouterr().err


@pytest.mark.parametrize("command,module", [
    ("broker", "spine.broker.main"), ("ping", "spine.client.ping"),
    ("status", "spine.client.status"), ("pair", "spine.security.pair_cli"),
])
def test_a_missing_command_module_is_a_clear_error(monkeypatch, capsys, command, module):
    monkeypatch.setitem(sys.modules, module, None)  # makes the import fail
    argv = [command, "open"] if command == "pair" else [command]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"spine: error: 'spine {command}' is not available")
    assert module in err and "Traceback" not in err


def test_a_missing_dependency_of_a_command_is_a_clear_error(monkeypatch, capsys):
    def fail(name: str):
        raise ModuleNotFoundError("No module named 'psutil'", name="psutil")

    monkeypatch.setattr(cli.importlib, "import_module", fail)
    assert cli.main(["status"]) == 2
    assert "needs the Python module 'psutil'" in capsys.readouterr().err


def test_a_command_module_without_its_function_is_a_clear_error(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "spine.client.status", argparse)  # has no run_status
    assert cli.main(["status"]) == 2
    assert "has no run_status()" in capsys.readouterr().err


def test_exit_status_of_a_command_is_returned(monkeypatch):
    monkeypatch.setattr(cli, "_import_command", lambda *a: (lambda args: 3))
    assert cli.main(["status"]) == 3
    monkeypatch.setattr(cli, "_import_command", lambda *a: (lambda args: None))
    assert cli.main(["status"]) == 0


def test_os_errors_are_one_line_too(monkeypatch, capsys):
    def deny(args):
        raise PermissionError(13, "Permission denied", "/etc/spine/keys")

    monkeypatch.setattr(cli, "_import_command", lambda *a: deny)
    assert cli.main(["status"]) == 2
    assert capsys.readouterr().err == "spine: error: Permission denied: /etc/spine/keys\n"


def test_interrupt_exits_130_quietly(monkeypatch, capsys):
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_import_command", lambda *a: interrupted)
    assert cli.main(["ping"]) == 130
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("argv", [[], ["nonsense"], ["keys"], ["keys", "show", "a", "--bogus"]])
def test_usage_errors_exit_2(argv):
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 2


def test_version_and_help(capsys):
    for argv in (["--version"], ["--help"]):
        with pytest.raises(SystemExit) as info:
            cli.main(argv)
        assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("spine ")
    for command in ("broker", "keys", "whitelist", "pair", "ping", "status", "supervise", "bench"):
        assert command in out
