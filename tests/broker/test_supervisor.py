"""Resurrection: the pure restart policy and lifecycle (fake clock), then real child processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from spine.broker.supervisor import (
    Action,
    ChildLifecycle,
    ChildState,
    ComponentSpec,
    EventKind,
    ExitDecision,
    RestartLimits,
    RestartPolicy,
    Supervisor,
    SupervisorEvent,
    load_config,
    parse_config,
)
from spine.errors import ConfigError, SupervisorError

# --- RestartPolicy (pure) ---------------------------------------------------------------


def test_backoff_doubles_between_restarts() -> None:
    policy = RestartPolicy(RestartLimits(backoff_initial=0.5, backoff_factor=2.0))
    assert [policy.on_failure(float(t)) for t in range(5)] == [0.5, 1.0, 2.0, 4.0, 8.0]


def test_sixth_failure_within_a_minute_gives_up() -> None:
    policy = RestartPolicy(RestartLimits())
    for t in range(5):
        assert policy.on_failure(float(t)) is not None
    assert policy.on_failure(5.0) is None
    assert policy.recent(5.0) == 5


def test_restarts_older_than_the_window_stop_counting() -> None:
    policy = RestartPolicy(RestartLimits(max_restarts=5, window=60.0))
    for t in range(5):
        policy.on_failure(float(t))
    assert policy.on_failure(59.999) is None  # restart granted at t=0 still inside
    assert policy.recent(60.0) == 4  # ...and out exactly 60 s later
    assert policy.on_failure(60.0) == 8.0  # 4 in the window: the fifth backoff step


def test_backoff_is_capped() -> None:
    policy = RestartPolicy(RestartLimits(max_restarts=20, backoff_initial=1.0, backoff_max=5.0))
    delays = [policy.on_failure(float(t)) for t in range(6)]
    assert delays == [1.0, 2.0, 4.0, 5.0, 5.0, 5.0]


def test_backoff_starts_over_after_a_quiet_window() -> None:
    policy = RestartPolicy(RestartLimits())
    policy.on_failure(0.0)
    policy.on_failure(1.0)
    assert policy.on_failure(200.0) == 0.5


def test_zero_restarts_means_give_up_at_first_failure() -> None:
    assert RestartPolicy(RestartLimits(max_restarts=0)).on_failure(0.0) is None


def test_reset_forgets_restarts() -> None:
    policy = RestartPolicy(RestartLimits(max_restarts=1))
    policy.on_failure(0.0)
    policy.reset()
    assert policy.on_failure(1.0) == 0.5


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_restarts": -1},
        {"window": 0.0},
        {"grace": 0.0},
        {"grace": float("nan")},
        {"backoff_factor": 0.5},
        {"backoff_initial": 10.0, "backoff_max": 1.0},
        {"backoff_initial": -1.0},
    ],
)
def test_unreasonable_limits_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigError):
        RestartLimits(**kwargs)  # type: ignore[arg-type]


# --- ChildLifecycle (pure) ---------------------------------------------------------------

LIMITS = RestartLimits(grace=5.0, backoff_initial=0.5)


@pytest.fixture
def running() -> ChildLifecycle:
    life = ChildLifecycle(LIMITS)
    assert life.state is ChildState.STOPPED
    assert life.start(0.0) is Action.START
    assert life.state is ChildState.RUNNING
    return life


def test_dead_component_gets_sigterm_then_sigkill_at_exactly_the_grace(
    running: ChildLifecycle,
) -> None:
    assert running.declare_dead(10.0) is Action.TERMINATE
    assert running.state is ChildState.TERMINATING
    assert running.next_deadline() == 15.0
    assert running.tick(14.999999) is None
    assert running.tick(15.0) is Action.KILL
    assert running.state is ChildState.KILLING
    assert running.next_deadline() is None


def test_revived_component_is_restarted_after_backoff(running: ChildLifecycle) -> None:
    running.declare_dead(10.0)
    running.tick(15.0)
    assert running.exited(15.1, clean=False) is ExitDecision.RESTART
    assert running.state is ChildState.BACKOFF
    assert running.next_deadline() == pytest.approx(15.6)
    assert running.tick(15.5) is None
    assert running.tick(15.6) is Action.START
    assert running.state is ChildState.RUNNING


def test_component_that_exits_on_sigterm_is_restarted_even_when_clean(
    running: ChildLifecycle,
) -> None:
    running.declare_dead(10.0)
    assert running.exited(11.0, clean=True) is ExitDecision.RESTART


def test_clean_exit_on_its_own_is_not_restarted(running: ChildLifecycle) -> None:
    assert running.exited(3.0, clean=True) is ExitDecision.STOPPED
    assert running.state is ChildState.STOPPED


def test_crash_is_restarted(running: ChildLifecycle) -> None:
    assert running.exited(3.0, clean=False) is ExitDecision.RESTART


def test_crash_loop_gives_up_after_the_limit(running: ChildLifecycle) -> None:
    now = 0.0
    for _ in range(5):
        assert running.exited(now, clean=False) is ExitDecision.RESTART
        now = running.next_deadline() or now
        assert running.tick(now) is Action.START
    assert running.exited(now, clean=False) is ExitDecision.GIVE_UP
    assert running.state is ChildState.FAILED
    assert running.next_deadline() is None
    assert running.tick(now + 1000.0) is None


def test_failed_component_can_be_restarted_by_an_operator(running: ChildLifecycle) -> None:
    for _ in range(6):
        if running.exited(0.0, clean=False) is ExitDecision.GIVE_UP:
            break
        running.tick(1000.0)
    assert running.state is ChildState.FAILED
    assert running.start(2000.0) is Action.START
    assert running.recent_restarts(2000.0) == 0


def test_declare_dead_is_ignored_unless_running(running: ChildLifecycle) -> None:
    running.declare_dead(1.0)
    assert running.declare_dead(2.0) is None  # already terminating: deadline unchanged
    assert running.next_deadline() == 6.0
    running.tick(6.0)
    assert running.declare_dead(7.0) is None  # killing
    running.exited(7.0, clean=False)
    assert running.declare_dead(7.1) is None  # in backoff
    assert ChildLifecycle(LIMITS).declare_dead(0.0) is None  # stopped


def test_stop_terminates_and_does_not_restart(running: ChildLifecycle) -> None:
    assert running.stop(1.0) is Action.TERMINATE
    assert running.stopping
    assert running.tick(6.0) is Action.KILL
    assert running.exited(6.1, clean=False) is ExitDecision.STOPPED
    assert running.state is ChildState.STOPPED


def test_stop_during_revival_cancels_the_restart(running: ChildLifecycle) -> None:
    running.declare_dead(1.0)
    assert running.stop(2.0) is None
    assert running.exited(3.0, clean=True) is ExitDecision.STOPPED


def test_stop_during_backoff_cancels_the_restart(running: ChildLifecycle) -> None:
    running.exited(1.0, clean=False)
    assert running.stop(1.1) is None
    assert running.state is ChildState.STOPPED
    assert running.tick(100.0) is None


def test_starting_a_running_component_is_an_error(running: ChildLifecycle) -> None:
    with pytest.raises(SupervisorError, match="stop it first"):
        running.start(1.0)


def test_exit_without_a_process_is_an_error() -> None:
    with pytest.raises(SupervisorError, match="no process was running"):
        ChildLifecycle(LIMITS).exited(0.0, clean=False)


# --- configuration ------------------------------------------------------------------------


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "components.toml"
    path.write_text(textwrap.dedent(text))
    return path


def test_config_is_read_from_toml(tmp_path: Path) -> None:
    config = load_config(
        write(
            tmp_path,
            """
            [supervisor]
            grace_seconds = 2
            max_restarts = 3
            restart_window_seconds = 30.0
            backoff_initial_seconds = 0.25
            backoff_max_seconds = 4

            [[component]]
            name = "memory-1"
            argv = ["python3", "-m", "memory"]
            env = { SPINE_KEYS_DIR = "/var/lib/spine/components/memory-1" }
            cwd = "/var/lib/spine"

            [[component]]
            name = "physics"
            argv = ["physics-engine"]
            """,
        )
    )
    assert config.limits == RestartLimits(
        max_restarts=3, window=30.0, backoff_initial=0.25, backoff_max=4.0, grace=2.0
    )
    memory, physics = config.components
    assert memory == ComponentSpec(
        "memory-1",
        ("python3", "-m", "memory"),
        {"SPINE_KEYS_DIR": "/var/lib/spine/components/memory-1"},
        "/var/lib/spine",
    )
    assert (physics.name, physics.argv, dict(physics.env), physics.cwd) == (
        "physics", ("physics-engine",), {}, None,
    )


def test_shipped_example_config_is_valid() -> None:
    example = Path(__file__).resolve().parents[2] / "systemd" / "components.toml"
    config = load_config(example)
    assert config.components and config.limits.grace == 5.0


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"component": [{"name": "a"}]}, "argv must be a non-empty list"),
        ({"component": [{"name": "a", "argv": []}]}, "argv must be a non-empty list"),
        ({"component": [{"name": "a", "argv": [1]}]}, "argv item must be a string"),
        ({"component": [{"name": "a", "argv": ["x\0y"]}]}, "no NUL byte"),
        ({"component": [{"name": "-a", "argv": ["x"]}]}, "name must be"),
        ({"component": [{"name": "a", "argv": ["x"], "cwd": "rel"}]}, "absolute path"),
        ({"component": [{"name": "a", "argv": ["x"], "env": {"1X": "v"}}]}, "environment"),
        ({"component": [{"name": "a", "argv": ["x"], "env": {"X": 1}}]}, "must be a string"),
        ({"component": [{"name": "a", "argv": ["x"], "agrv": 1}]}, "unknown key"),
        ({"component": [{"name": "a", "argv": ["x"]}] * 2}, "appears twice"),
        ({"component": {"name": "a"}}, r"\[\[component\]\]"),
        ({"supervisor": {"grace_seconds": "5"}}, "must be a number"),
        ({"supervisor": {"max_restarts": 2.5}}, "must be an integer"),
        ({"supervisor": {"grace_seconds": -1}}, "grace"),
        ({"supervisor": {"grace": 5}}, "unknown key"),
        ({"components": []}, "unknown key"),
        ({"component": [{"name": "a", "argv": ["x"] * 300}]}, "at most 256"),
    ],
)
def test_invalid_config_is_refused_with_a_reason(doc: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(doc, "test.toml")


def test_oversized_config_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "big.toml"
    path.write_bytes(b"#" * (2 << 20))
    with pytest.raises(ConfigError, match="larger than"):
        load_config(path)


def test_invalid_toml_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path, "[[component]\n"))


def test_missing_config_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "absent.toml")


# --- real processes -----------------------------------------------------------------------

FAST = RestartLimits(
    max_restarts=5, window=60.0, backoff_initial=0.01, backoff_factor=2.0,
    backoff_max=0.1, grace=0.3,
)

# A component that records each start (pid, argv, env) and then waits for SIGTERM,
# which it handles gracefully (so it only dies by SIGKILL while frozen).
RECORDING_CHILD = textwrap.dedent(
    """
    import json, os, signal, sys, time
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    record = {"pid": os.getpid(), "argv": sys.argv[1:], "identity": os.environ.get("SPINE_TEST_ID"),
              "notify": os.environ.get("NOTIFY_SOCKET")}
    with open(os.environ["SPINE_TEST_LOG"], "a") as f:
        f.write(json.dumps(record) + "\\n")
    while True:
        time.sleep(3600)
    """
)


def python_spec(name: str, code: str, *args: str, env: dict[str, str] | None = None) -> ComponentSpec:
    return ComponentSpec(name, (sys.executable, "-c", code, *args), env or {})


@pytest.fixture
def supervisors() -> Iterator[Callable[..., Supervisor]]:
    made: list[Supervisor] = []

    def make(*specs: ComponentSpec, limits: RestartLimits = FAST, **kwargs: object) -> Supervisor:
        sup = Supervisor(specs, limits, **kwargs)  # type: ignore[arg-type]
        made.append(sup)
        return sup

    try:
        yield make
    finally:
        for sup in made:
            sup.close()
            assert not sup.running


def drive(
    sup: Supervisor,
    until: Callable[[list[SupervisorEvent]], bool],
    timeout: float = 15.0,
) -> list[SupervisorEvent]:
    """Run the supervisor's loop until `until(events so far)` holds (or fail at timeout)."""
    events: list[SupervisorEvent] = []
    give_up_at = time.monotonic() + timeout
    while not until(events):
        now = time.monotonic()
        assert now < give_up_at, f"condition not reached; events: {[str(e) for e in events]}"
        events += sup.poll(now)
        deadline = sup.next_deadline(now)
        pause = 0.01 if deadline is None else min(0.01, max(0.0, deadline - now))
        time.sleep(pause)  # a poll interval of the loop, not a synchronisation
    return events


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    give_up_at = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < give_up_at, "condition not reached"
        time.sleep(0.005)


def kinds(events: list[SupervisorEvent]) -> list[EventKind]:
    return [e.kind for e in events]


def process_state(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return None


def records(path: Path) -> list[dict]:
    import json

    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_child_that_dies_at_once_is_restarted_up_to_the_limit_then_given_up(
    supervisors: Callable[..., Supervisor], caplog: pytest.LogCaptureFixture
) -> None:
    sup = supervisors(python_spec("crasher", "import sys; sys.exit(3)"))
    events = sup.start(time.monotonic())
    events += drive(sup, lambda ev: EventKind.GAVE_UP in kinds(ev))
    assert kinds(events).count(EventKind.STARTED) == 6  # the first start and 5 restarts
    assert kinds(events).count(EventKind.RESTART_SCHEDULED) == 5
    assert all(e.detail == "exit code 3" for e in events if e.kind is EventKind.EXITED)
    alert = events[-1]
    assert alert.kind is EventKind.GAVE_UP and alert.alert
    assert "restarted 5 times within 60 s" in alert.detail
    assert "ALERT" in caplog.text
    assert sup.state("crasher") is ChildState.FAILED
    assert sup.next_deadline(time.monotonic()) is None  # nothing more will happen
    assert not sup.running
    assert sup.poll(time.monotonic() + 3600) == []


def test_backoff_spaces_the_restarts(supervisors: Callable[..., Supervisor]) -> None:
    limits = RestartLimits(max_restarts=3, backoff_initial=0.05, backoff_factor=2.0,
                           backoff_max=1.0, grace=0.3)
    sup = supervisors(python_spec("crasher", "raise SystemExit(1)"), limits=limits)
    events = sup.start(time.monotonic())
    events += drive(sup, lambda ev: EventKind.GAVE_UP in kinds(ev))
    starts = [e.at for e in events if e.kind is EventKind.STARTED]
    gaps = [later - earlier for earlier, later in zip(starts, starts[1:])]
    for gap, minimum in zip(gaps, (0.05, 0.1, 0.2)):
        assert gap >= minimum


def test_frozen_child_is_sigtermed_then_sigkilled_and_restarted_with_same_identity(
    supervisors: Callable[..., Supervisor], tmp_path: Path
) -> None:
    log = tmp_path / "starts.jsonl"
    env = {"SPINE_TEST_LOG": str(log), "SPINE_TEST_ID": "memory-1-keys"}
    sup = supervisors(python_spec("memory-1", RECORDING_CHILD, "--name", "memory-1", env=env))
    sup.start(time.monotonic())
    wait_for(lambda: len(records(log)) == 1)  # its SIGTERM handler is installed
    first_pid = sup.pid("memory-1")
    assert first_pid == records(log)[0]["pid"]

    os.kill(first_pid, signal.SIGSTOP)
    wait_for(lambda: process_state(first_pid) == "T")
    events = sup.declare_dead("memory-1", time.monotonic())
    assert kinds(events) == [EventKind.TERMINATING]
    events += drive(sup, lambda ev: EventKind.STARTED in kinds(ev))

    assert kinds(events) == [
        EventKind.TERMINATING, EventKind.KILLED, EventKind.EXITED,
        EventKind.RESTART_SCHEDULED, EventKind.STARTED,
    ]
    terminating, killed, exited = events[:3]
    assert killed.at - terminating.at >= FAST.grace
    assert exited.detail == "killed by SIGKILL"
    assert process_state(first_pid) is None  # reaped: no zombie left
    wait_for(lambda: len(records(log)) == 2)
    first, second = records(log)
    assert second["pid"] == sup.pid("memory-1") != first_pid
    assert second["argv"] == first["argv"] == ["--name", "memory-1"]
    assert second["identity"] == first["identity"] == "memory-1-keys"


def test_responsive_child_stops_on_sigterm_without_sigkill(
    supervisors: Callable[..., Supervisor], tmp_path: Path
) -> None:
    log = tmp_path / "starts.jsonl"
    sup = supervisors(python_spec("reasoning", RECORDING_CHILD, env={"SPINE_TEST_LOG": str(log)}))
    sup.start(time.monotonic())
    wait_for(lambda: len(records(log)) == 1)
    events = sup.declare_dead("reasoning", time.monotonic())
    events += drive(sup, lambda ev: EventKind.STARTED in kinds(ev))
    assert EventKind.KILLED not in kinds(events)
    assert next(e for e in events if e.kind is EventKind.EXITED).detail == "exit code 0"


def test_child_killed_from_outside_is_noticed_and_restarted(
    supervisors: Callable[..., Supervisor], tmp_path: Path
) -> None:
    log = tmp_path / "starts.jsonl"
    sup = supervisors(python_spec("agent", RECORDING_CHILD, env={"SPINE_TEST_LOG": str(log)}))
    sup.start(time.monotonic())
    wait_for(lambda: len(records(log)) == 1)
    os.kill(sup.pid("agent"), signal.SIGKILL)
    events = drive(sup, lambda ev: EventKind.STARTED in kinds(ev))
    assert kinds(events) == [EventKind.EXITED, EventKind.RESTART_SCHEDULED, EventKind.STARTED]
    assert events[0].detail == "killed by SIGKILL"


def test_clean_exit_is_not_restarted(supervisors: Callable[..., Supervisor]) -> None:
    sup = supervisors(python_spec("oneshot", "pass"))
    sup.start(time.monotonic())
    events = drive(sup, lambda ev: EventKind.STOPPED in kinds(ev))
    assert kinds(events) == [EventKind.EXITED, EventKind.STOPPED]
    assert sup.state("oneshot") is ChildState.STOPPED


def test_missing_program_is_retried_then_given_up(supervisors: Callable[..., Supervisor]) -> None:
    sup = supervisors(ComponentSpec("ghost", ("/nonexistent/spine-component",)))
    events = sup.start(time.monotonic())
    assert events[0].kind is EventKind.START_FAILED and "cannot run" in events[0].detail
    events += drive(sup, lambda ev: EventKind.GAVE_UP in kinds(ev))
    assert kinds(events).count(EventKind.START_FAILED) == 6


def test_systemd_per_process_variables_are_not_inherited(
    supervisors: Callable[..., Supervisor], tmp_path: Path
) -> None:
    log = tmp_path / "starts.jsonl"
    base = {**os.environ, "NOTIFY_SOCKET": "/run/systemd/notify", "WATCHDOG_USEC": "1000"}
    sup = supervisors(
        python_spec("c", RECORDING_CHILD, env={"SPINE_TEST_LOG": str(log)}), base_env=base
    )
    sup.start(time.monotonic())
    wait_for(lambda: len(records(log)) == 1)
    assert records(log)[0]["notify"] is None


def test_declare_dead_for_unsupervised_component_is_ignored(
    supervisors: Callable[..., Supervisor],
) -> None:
    sup = supervisors()
    assert not sup.supervises("stranger")
    assert sup.declare_dead("stranger", time.monotonic()) == []
    with pytest.raises(SupervisorError, match="no component named"):
        sup.pid("stranger")


def test_close_stops_every_child_including_one_that_ignores_sigterm(
    supervisors: Callable[..., Supervisor], tmp_path: Path
) -> None:
    log = tmp_path / "starts.jsonl"
    stubborn = RECORDING_CHILD.replace(
        "lambda *a: sys.exit(0)", "signal.SIG_IGN"
    )
    env = {"SPINE_TEST_LOG": str(log)}
    sup = supervisors(
        python_spec("polite", RECORDING_CHILD, env=env),
        python_spec("stubborn", stubborn, env=env),
    )
    sup.start(time.monotonic())
    wait_for(lambda: len(records(log)) == 2)
    pids = [sup.pid("polite"), sup.pid("stubborn")]
    events = sup.close()
    assert not sup.running
    assert all(process_state(pid) is None for pid in pids)  # gone and reaped
    assert [e.name for e in events if e.kind is EventKind.KILLED] == ["stubborn"]
    assert sup.state("polite") is ChildState.STOPPED
    assert sup.state("stubborn") is ChildState.STOPPED
    assert sup.close() == []


def test_next_deadline_wakes_the_loop_to_notice_exits(
    supervisors: Callable[..., Supervisor], tmp_path: Path
) -> None:
    sup = supervisors(python_spec("c", RECORDING_CHILD, env={"SPINE_TEST_LOG": str(tmp_path / "l")}))
    assert sup.next_deadline(100.0) is None
    sup.start(time.monotonic())
    assert sup.next_deadline(100.0) == 100.5
    quiet = supervisors(
        python_spec("d", RECORDING_CHILD, env={"SPINE_TEST_LOG": str(tmp_path / "m")}),
        exit_check_interval=None,
    )
    quiet.start(time.monotonic())
    assert quiet.next_deadline(100.0) is None


def test_status_lists_components(supervisors: Callable[..., Supervisor], tmp_path: Path) -> None:
    sup = supervisors(python_spec("b", RECORDING_CHILD, env={"SPINE_TEST_LOG": str(tmp_path / "l")}),
                      python_spec("a", "pass"))
    rows = sup.status(time.monotonic())
    assert [(r.name, r.state, r.pid) for r in rows] == [
        ("a", ChildState.STOPPED, None), ("b", ChildState.STOPPED, None),
    ]
    sup.start(time.monotonic(), ["b"])
    assert sup.status(time.monotonic())[1].pid == sup.pid("b") is not None


# --- standalone: spine supervise CONFIG ------------------------------------------------------


def test_standalone_supervisor_runs_components_and_stops_them_on_sigterm(tmp_path: Path) -> None:
    log = tmp_path / "starts.jsonl"
    child = tmp_path / "child.py"
    child.write_text(RECORDING_CHILD)
    config = write(
        tmp_path,
        f"""
        [supervisor]
        grace_seconds = 2.0

        [[component]]
        name = "one"
        argv = [{sys.executable!r}, {str(child)!r}, "one"]
        env = {{ SPINE_TEST_LOG = {str(log)!r} }}

        [[component]]
        name = "two"
        argv = [{sys.executable!r}, {str(child)!r}, "two"]
        env = {{ SPINE_TEST_LOG = {str(log)!r} }}
        """,
    )
    proc = subprocess.Popen(
        [sys.executable, "-c",
         "import sys; from spine.broker.supervisor import main; sys.exit(main(sys.argv[1:]))",
         str(config)],
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        wait_for(lambda: len(records(log)) == 2)
        pids = [r["pid"] for r in records(log)]
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=10)
        assert proc.returncode == 0, stderr.decode()
        assert all(process_state(pid) is None for pid in pids)
        text = stderr.decode()
        assert "one" in text and "started" in text and "stopped" in text
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        for r in records(log):
            try:
                os.kill(r["pid"], signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_standalone_supervisor_reports_a_bad_config(tmp_path: Path) -> None:
    from spine.broker.supervisor import main

    config = write(tmp_path, "[[component]]\nname = 'x'\n")
    assert main([str(config)]) == 2


def test_signals_reach_what_a_component_spawned(
    supervisors: Callable[..., Supervisor], tmp_path: Path
) -> None:
    helper_pid_file = tmp_path / "helper.pid"
    code = textwrap.dedent(
        f"""
        import subprocess, sys, time
        helper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"])
        open({str(helper_pid_file)!r}, "w").write(str(helper.pid))
        time.sleep(3600)
        """
    )
    sup = supervisors(python_spec("parent", code))
    sup.start(time.monotonic())
    wait_for(lambda: helper_pid_file.exists() and helper_pid_file.read_text() != "")
    helper = int(helper_pid_file.read_text())
    sup.close()
    # Killed with its parent's process group; at most a zombie awaiting init.
    wait_for(lambda: process_state(helper) in (None, "Z"))
