"""Broker configuration: defaults, TOML, the environment (spine's and systemd's) and flags."""

from __future__ import annotations

from pathlib import Path

import pytest

from spine import paths
from spine.broker import config
from spine.broker.config import BrokerConfig
from spine.errors import ConfigError

ENV_VARS = ("SPINE_KEYS_DIR", "SPINE_RUNTIME_DIR", "SPINE_STATE_DIR", "RUNTIME_DIRECTORY",
            "STATE_DIRECTORY", "CONFIGURATION_DIRECTORY", "XDG_RUNTIME_DIR")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    """Each test starts without any of the variables spine reads."""
    for var in ENV_VARS:
        monkeypatch.delenv(var, raising=False)


def write_toml(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# --------------------------------------------------------------------------------------
# Defaults
# --------------------------------------------------------------------------------------

def test_built_in_defaults_work_without_any_file_or_environment(monkeypatch):
    import os
    cfg = config.load(None)
    assert cfg.keys_dir == Path("keys")
    assert cfg.state_dir == Path("state")
    assert cfg.runtime_dir == Path(f"/tmp/spine-{os.getuid()}")
    assert cfg.hwm == 10_000
    assert cfg.tcp_endpoints() is None
    assert cfg.ipc_endpoints().control.endswith("/control.ipc")


def test_xdg_runtime_dir_gives_a_spine_subdirectory(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    assert config.load(None).runtime_dir == tmp_path / "spine"


# --------------------------------------------------------------------------------------
# TOML
# --------------------------------------------------------------------------------------

def test_toml_file_sets_broker_values(tmp_path):
    cfg = config.load(write_toml(tmp_path / "broker.toml", """
        [broker]
        name = "main-broker"
        tcp_host = "0.0.0.0"
        tcp_port = 6000
        hwm = 5000
        whitelist_poll_s = 1
        degrade_after_s = 2.5
        keys_dir = "/etc/spine/keys"
    """))
    assert cfg.name == "main-broker" and cfg.hwm == 5000
    assert cfg.whitelist_poll_s == 1 and cfg.degrade_after_s == 2.5
    assert cfg.keys_dir == Path("/etc/spine/keys")
    assert cfg.tcp_endpoints().control == "tcp://0.0.0.0:6000"
    assert cfg.tcp_endpoints().pairing == "tcp://0.0.0.0:6003"


def test_relative_paths_in_toml_are_relative_to_the_file(tmp_path):
    (tmp_path / "etc").mkdir()
    cfg = config.load(write_toml(tmp_path / "etc" / "broker.toml",
                                 '[broker]\nkeys_dir = "keys"\nstate_dir = "../state"\n'))
    assert cfg.keys_dir == tmp_path / "etc" / "keys"
    assert cfg.state_dir == tmp_path / "etc" / ".." / "state"


def test_toml_without_broker_table_gives_defaults(tmp_path):
    assert config.load(write_toml(tmp_path / "b.toml", "")) == config.load(None)


def test_unknown_key_is_an_error_naming_it(tmp_path):
    with pytest.raises(ConfigError, match="unknown \\[broker\\] keys hwn"):
        config.load(write_toml(tmp_path / "b.toml", "[broker]\nhwn = 10\n"))


def test_unknown_table_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="brokr"):
        config.load(write_toml(tmp_path / "b.toml", "[brokr]\nhwm = 10\n"))


def test_keys_outside_a_table_are_an_error(tmp_path):
    with pytest.raises(ConfigError, match="keys_dir"):
        config.load(write_toml(tmp_path / "b.toml", 'keys_dir = "/k"\n'))


@pytest.mark.parametrize("line,key", [
    ('hwm = "lots"', "hwm"),
    ("hwm = 1.5", "hwm"),
    ("hwm = true", "hwm"),
    ("whitelist_poll_s = \"fast\"", "whitelist_poll_s"),
    ("whitelist_poll_s = false", "whitelist_poll_s"),
    ("name = 7", "name"),
    ("tcp_host = 5", "tcp_host"),
    ("keys_dir = 5", "keys_dir"),
    ("components_file = [\"a\"]", "components_file"),
])
def test_value_of_the_wrong_type_is_an_error_naming_the_key(tmp_path, line, key):
    with pytest.raises(ConfigError, match=f"\\[broker\\] {key} must be"):
        config.load(write_toml(tmp_path / "b.toml", f"[broker]\n{line}\n"))


def test_broker_that_is_not_a_table_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="table"):
        config.load(write_toml(tmp_path / "b.toml", "broker = 5\n"))


def test_invalid_toml_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="not valid TOML"):
        config.load(write_toml(tmp_path / "b.toml", "[broker\n"))


def test_missing_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config file"):
        config.load(tmp_path / "absent.toml")


# --------------------------------------------------------------------------------------
# Environment and flags
# --------------------------------------------------------------------------------------

def test_spine_variables_set_the_directories(monkeypatch, tmp_path):
    monkeypatch.setenv("SPINE_KEYS_DIR", str(tmp_path / "k"))
    monkeypatch.setenv("SPINE_RUNTIME_DIR", str(tmp_path / "r"))
    monkeypatch.setenv("SPINE_STATE_DIR", str(tmp_path / "s"))
    cfg = config.load(None)
    assert (cfg.keys_dir, cfg.runtime_dir, cfg.state_dir) == \
        (tmp_path / "k", tmp_path / "r", tmp_path / "s")


def test_systemd_directories_are_honoured(monkeypatch, tmp_path):
    monkeypatch.setenv("RUNTIME_DIRECTORY", str(tmp_path / "run"))
    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path / "lib"))
    cfg = config.load(None)
    assert cfg.runtime_dir == tmp_path / "run"
    assert cfg.state_dir == tmp_path / "lib"
    assert cfg.keys_dir == tmp_path / "lib" / "keys"


def test_systemd_directory_lists_use_the_first_entry(monkeypatch, tmp_path):
    monkeypatch.setenv("RUNTIME_DIRECTORY", f"{tmp_path}/a:{tmp_path}/b")
    assert config.load(None).runtime_dir == tmp_path / "a"


def test_spine_variables_beat_systemd_ones(monkeypatch, tmp_path):
    monkeypatch.setenv("RUNTIME_DIRECTORY", str(tmp_path / "systemd-run"))
    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path / "systemd-lib"))
    monkeypatch.setenv("SPINE_RUNTIME_DIR", str(tmp_path / "r"))
    monkeypatch.setenv("SPINE_STATE_DIR", str(tmp_path / "s"))
    monkeypatch.setenv("SPINE_KEYS_DIR", str(tmp_path / "k"))
    cfg = config.load(None)
    assert (cfg.keys_dir, cfg.runtime_dir, cfg.state_dir) == \
        (tmp_path / "k", tmp_path / "r", tmp_path / "s")


def test_configuration_directory_supplies_broker_toml(monkeypatch, tmp_path):
    monkeypatch.setenv("CONFIGURATION_DIRECTORY", str(tmp_path))
    assert paths.config_file() is None  # no broker.toml there yet
    write_toml(tmp_path / "broker.toml", "[broker]\nhwm = 123\n")
    assert paths.config_file() == tmp_path / "broker.toml"
    assert config.load(paths.config_file()).hwm == 123


def test_explicit_config_file_beats_configuration_directory(monkeypatch, tmp_path):
    monkeypatch.setenv("CONFIGURATION_DIRECTORY", str(tmp_path))
    write_toml(tmp_path / "broker.toml", "[broker]\nhwm = 1\n")
    mine = write_toml(tmp_path / "mine.toml", "[broker]\nhwm = 2\n")
    assert config.load(paths.config_file(mine)).hwm == 2


def test_toml_beats_the_environment_and_flags_beat_both(monkeypatch, tmp_path):
    monkeypatch.setenv("SPINE_KEYS_DIR", str(tmp_path / "env"))
    toml = write_toml(tmp_path / "b.toml", f'[broker]\nkeys_dir = "{tmp_path}/toml"\n')
    assert config.load(toml).keys_dir == tmp_path / "toml"
    assert config.load(toml, keys_dir=tmp_path / "flag").keys_dir == tmp_path / "flag"


def test_overrides_of_none_are_ignored(tmp_path):
    toml = write_toml(tmp_path / "b.toml", '[broker]\ntcp_host = "127.0.0.1"\n')
    cfg = config.load(toml, tcp_host=None, tcp_port=None, keys_dir=None)
    assert cfg.tcp_host == "127.0.0.1" and cfg.tcp_port == BrokerConfig().tcp_port


def test_environment_is_read_when_loading_not_at_import(monkeypatch, tmp_path):
    monkeypatch.setenv("SPINE_KEYS_DIR", str(tmp_path / "one"))
    assert config.load(None).keys_dir == tmp_path / "one"
    monkeypatch.setenv("SPINE_KEYS_DIR", str(tmp_path / "two"))
    assert config.load(None).keys_dir == tmp_path / "two"


def test_an_ipc_path_too_long_for_sun_path_is_an_error(tmp_path):
    cfg = config.load(None, runtime_dir=tmp_path / ("d" * 120))
    with pytest.raises(ConfigError, match="shorter runtime directory"):
        cfg.ipc_endpoints()


def test_tcp_port_out_of_range_is_an_error():
    with pytest.raises(ConfigError, match="tcp_port = 65535 is out of range"):
        config.load(None, tcp_host="127.0.0.1", tcp_port=65535)


@pytest.mark.parametrize("degrade, dead", [(1.0, 10.0), (1.9, 10.0), (3.0, 3.0), (5.0, 4.0)])
def test_watchdog_thresholds_that_would_flap_or_never_die_are_refused(degrade, dead):
    from spine.broker.config import BrokerConfig
    with pytest.raises(ConfigError, match="degrade_after_s"):
        BrokerConfig(degrade_after_s=degrade, dead_after_s=dead)


# --------------------------------------------------------------------------------------
# Ranges: each key has a type and a range, checked before anything binds
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("line,key", [
    ("control_max_bytes = -1", "control_max_bytes"),
    ("data_max_bytes = 0", "data_max_bytes"),
    ("whitelist_poll_s = nan", "whitelist_poll_s"),
    ("whitelist_poll_s = -1", "whitelist_poll_s"),
    ("whitelist_poll_s = 0", "whitelist_poll_s"),
    ("pairing_window_s = -5", "pairing_window_s"),
    ("pairing_window_s = inf", "pairing_window_s"),
    ("dead_after_s = inf", "dead_after_s"),
    ("degrade_after_s = nan", "degrade_after_s"),
    ("tcp_port = 99999", "tcp_port"),
    ("data_io_nice = -20", "data_io_nice"),
    ("spin_us = 100000000", "spin_us"),
    ("hwm = 0", "hwm"),
    ("data_batch = 0", "data_batch"),
    ("queue_max_messages = 0", "queue_max_messages"),
    ("queue_max_bytes = -1", "queue_max_bytes"),
    ("queues_max_bytes = 1", "queues_max_bytes"),
    ("slow_consumer_after_s = 0", "slow_consumer_after_s"),
    ("slow_consumer_after_s = nan", "slow_consumer_after_s"),
])
def test_a_value_out_of_its_range_is_an_error_naming_key_value_and_range(tmp_path, line, key):
    path = write_toml(tmp_path / "b.toml", f"[broker]\n{line}\n")
    with pytest.raises(ConfigError, match=f"b.toml: \\[broker\\] {key} = .* must be") as caught:
        config.load(path)
    assert caught.value.key == key
    assert caught.value.allowed and caught.value.allowed in str(caught.value)


@pytest.mark.parametrize("overrides,key", [
    (dict(data_max_bytes=8192, control_max_bytes=65536), "data_max_bytes"),
    (dict(queue_max_bytes=2 ** 30, queues_max_bytes=2 ** 20), "queue_max_bytes"),
    (dict(name="has space"), "name"),
    (dict(name=""), "name"),
])
def test_values_that_contradict_each_other_are_an_error(overrides, key):
    with pytest.raises(ConfigError) as caught:
        BrokerConfig(**overrides)
    assert caught.value.key == key and caught.value.allowed


def test_every_numeric_key_has_a_range_and_the_defaults_are_inside_it():
    numeric = {f.name for f in __import__("dataclasses").fields(BrokerConfig)
               if isinstance(getattr(BrokerConfig(), f.name), (int, float))}
    assert numeric == set(config.LIMITS)
    for key, (low, high) in config.LIMITS.items():
        assert low <= getattr(BrokerConfig(), key) <= high, key


def test_the_broker_refuses_a_bad_value_before_it_binds_anything(tmp_path):
    """`spine broker` with whitelist_poll_s = nan (which once killed a broker after it was
    ready) exits with the key, the value and the range, and creates no socket."""
    import os
    import subprocess
    import sys
    path = write_toml(tmp_path / "b.toml", "[broker]\nwhitelist_poll_s = nan\n")
    runtime = tmp_path / "run"
    env = {k: v for k, v in os.environ.items() if k not in ENV_VARS}
    done = subprocess.run([sys.executable, "-m", "spine", "broker", "--config", str(path),
                           "--keys-dir", str(tmp_path / "keys"), "--runtime-dir", str(runtime)],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "whitelist_poll_s = nan is out of range: it must be a number from 0.01 to 3600" \
        in done.stderr
    assert not runtime.exists() or not any(runtime.iterdir())


def test_docs_list_every_key_of_the_broker_table():
    import dataclasses
    text = (Path(__file__).parents[2] / "docs" / "operations.md").read_text()
    table = text[text.index("### The `[broker]` table"):text.index("### Liveness")]
    for f in dataclasses.fields(BrokerConfig):
        assert f"`{f.name}`" in table, f.name
