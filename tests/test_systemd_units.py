"""The systemd unit files: systemd accepts them, they carry what SPEC §4 and issue 6 ask,
and the hardening they claim holds for our Python stack."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

UNITS = Path(__file__).resolve().parents[1] / "systemd"
BROKER = UNITS / "spine-broker.service"
COMPONENT = UNITS / "spine-component@.service"
INSTALLED_SPINE = "/usr/local/bin/spine"

analyze = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(
    analyze is None, reason="systemd-analyze is not installed (apt-get install systemd)"
)


def settings(unit: Path) -> dict[str, list[str]]:
    """Key → values of a unit file (keys may repeat; comments and sections dropped)."""
    found: dict[str, list[str]] = {}
    for line in unit.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _, value = line.partition("=")
        found.setdefault(key.strip(), []).append(value.strip())
    return found


@pytest.fixture
def unit_dir(tmp_path: Path) -> Path:
    """The units as this machine would install them: ExecStart points at a real program
    (systemd-analyze verify refuses a missing executable), plus one template instance."""
    program = shutil.which("spine") or "/bin/true"
    text = BROKER.read_text().replace(f"ExecStart={INSTALLED_SPINE} ", f"ExecStart={program} ")
    (tmp_path / BROKER.name).write_text(text)
    shutil.copy(COMPONENT, tmp_path / COMPONENT.name)
    (tmp_path / "spine-component@memory-1.service").symlink_to(COMPONENT.name)
    return tmp_path


def test_broker_unit_is_a_watched_notify_service() -> None:
    s = settings(BROKER)
    assert s["Type"] == ["notify"]
    assert s["NotifyAccess"] == ["main"]
    assert s["ExecStart"][0].endswith("spine broker")
    assert s["Restart"] == ["on-failure"]
    assert s["WatchdogSec"] and s["WatchdogSec"][0].endswith("s")
    assert "-HUP" in s["ExecReload"][0] and "$MAINPID" in s["ExecReload"][0]


def test_broker_unit_gives_the_broker_its_directories() -> None:
    s = settings(BROKER)
    assert s["DynamicUser"] == ["yes"] and s["User"] == ["spine"]
    assert s["RuntimeDirectory"] == ["spine"]
    assert s["StateDirectory"] == ["spine"]
    assert s["ConfigurationDirectory"] == ["spine"]
    assert "SPINE_KEYS_DIR=%S/spine/keys" in s["Environment"]
    assert s["UMask"] == ["0077"]


@pytest.mark.parametrize("unit", [BROKER, COMPONENT], ids=lambda p: p.name)
def test_units_are_hardened(unit: Path) -> None:
    s = settings(unit)
    for key, value in {
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "PrivateDevices": "yes",
        "NoNewPrivileges": "yes",
        "ProtectKernelTunables": "yes",
        "ProtectKernelModules": "yes",
        "ProtectKernelLogs": "yes",
        "ProtectControlGroups": "yes",
        "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
        "RestrictNamespaces": "yes",
        "LockPersonality": "yes",
        "MemoryDenyWriteExecute": "yes",
        "CapabilityBoundingSet": "",
        "UMask": "0077",
    }.items():
        assert s.get(key) == [value], f"{unit.name}: expected {key}={value}, got {s.get(key)}"
    assert "@system-service" in s["SystemCallFilter"]
    # /dev/shm must stay usable for the waveform channel: nothing may hide or re-mount it.
    for key in ("InaccessiblePaths", "ReadOnlyPaths", "TemporaryFileSystem"):
        assert not any("/dev/shm" in v for v in s.get(key, []))


def test_component_unit_shares_the_broker_identity_and_keeps_its_keys() -> None:
    s = settings(COMPONENT)
    assert s["User"] == settings(BROKER)["User"]
    assert s["DynamicUser"] == ["yes"]
    assert s["StateDirectory"] == ["spine-components/%i"]
    assert "SPINE_KEYS_DIR=%S/spine-components/%i" in s["Environment"]
    assert "SPINE_RUNTIME_DIR=%t/spine" in s["Environment"]
    assert s["Restart"] == ["on-failure"]
    assert s["TimeoutStopSec"] == ["5s"]  # SIGTERM, 5 s, SIGKILL
    assert s["StartLimitBurst"] == ["5"] and s["StartLimitIntervalSec"] == ["60s"]


@needs_analyze
def test_systemd_analyze_verify_accepts_the_units(unit_dir: Path) -> None:
    names = ["spine-broker.service", "spine-component@memory-1.service"]
    result = subprocess.run(
        [analyze, "verify", *names],
        cwd=unit_dir, capture_output=True, text=True, timeout=60,
    )
    # Warnings about our own files (unknown keys, bad values) count as failures too;
    # lines about the host's unrelated units do not.
    ours = [line for line in result.stderr.splitlines() if "spine" in line]
    assert result.returncode == 0 and not ours, result.stderr


@needs_analyze
def test_systemd_analyze_verify_would_catch_a_mistake(unit_dir: Path) -> None:
    broken = unit_dir / "spine-broker.service"
    broken.write_text(broken.read_text().replace("Type=notify", "Type=notfy"))
    result = subprocess.run(
        [analyze, "verify", "spine-broker.service"],
        cwd=unit_dir, capture_output=True, text=True, timeout=60,
    )
    assert "notfy" in result.stderr


@needs_analyze
@pytest.mark.parametrize("name", ["spine-broker.service", "spine-component@memory-1.service"])
def test_exposure_level_is_ok(unit_dir: Path, name: str) -> None:
    result = subprocess.run(
        [analyze, "security", "--offline=yes", "--no-pager", name],
        cwd=unit_dir, capture_output=True, text=True, timeout=60,
    )
    if "--offline" in result.stderr and result.returncode != 0:
        pytest.skip("this systemd-analyze has no --offline mode (needs systemd ≥ 250)")
    match = re.search(r"Overall exposure level for \S+: ([0-9.]+)", result.stdout)
    assert match, result.stdout + result.stderr
    assert float(match.group(1)) <= 2.0, result.stdout


MDWE_PROBE = textwrap.dedent(
    """
    import ctypes, mmap, os, sys, tempfile
    libc = ctypes.CDLL(None, use_errno=True)
    PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN = 65, 1
    if libc.prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0) != 0:
        sys.exit(77)  # kernel older than 6.3: cannot emulate MemoryDenyWriteExecute
    try:
        mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
        sys.exit(78)  # not enforced
    except OSError:
        pass
    import numpy, psutil, zmq
    from spine.protocol import neural_spike_pb2 as pb
    numpy.fft.fft(numpy.arange(8.0))
    psutil.Process().memory_info()
    d = tempfile.mkdtemp()
    ctx = zmq.Context()
    spub, ssec = zmq.curve_keypair()
    cpub, csec = zmq.curve_keypair()
    server = ctx.socket(zmq.ROUTER)
    server.curve_server, server.curve_secretkey, server.curve_publickey = True, ssec, spub
    server.bind(f"ipc://{d}/probe.ipc")
    client = ctx.socket(zmq.DEALER)
    client.curve_serverkey, client.curve_publickey, client.curve_secretkey = spub, cpub, csec
    client.connect(f"ipc://{d}/probe.ipc")
    client.send(pb.NeuralSpike(request_id="mdwe").SerializeToString())
    server.RCVTIMEO = 10000
    _, body = server.recv_multipart()
    assert pb.NeuralSpike.FromString(body).request_id == "mdwe"
    client.close(0); server.close(0); ctx.term()
    os.unlink(f"{d}/probe.ipc"); os.rmdir(d)
    print("ok")
    """
)


def test_python_stack_runs_with_memory_deny_write_execute() -> None:
    """MemoryDenyWriteExecute=yes in the units is safe: the same rule, enforced by the
    kernel through PR_SET_MDWE, leaves CPython, pyzmq CURVE, numpy and protobuf
    working."""
    if sys.platform != "linux":
        pytest.skip("PR_SET_MDWE is Linux-only")
    result = subprocess.run(
        [sys.executable, "-c", MDWE_PROBE], capture_output=True, text=True, timeout=60
    )
    if result.returncode == 77:
        pytest.skip("kernel lacks PR_SET_MDWE (Linux < 6.3)")
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr
