"""whitelist.txt: parsing, address pins, live reload and atomic, locked edits."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

import pytest
import zmq

from spine.errors import WhitelistError
from spine.protocol import neural_spike_pb2 as pb
from spine.security import whitelist
from spine.security.whitelist import Entry, Whitelist, add_entry, parse, read_entries, remove_entry

# What libzmq reports to ZAP as the peer address (checked with libzmq 4.3).
IPC_PEER = "localhost:0:0:4573"   # ipc: host, uid, gid and pid of the peer
TCP_PEER = "127.0.0.1"            # tcp: the peer's IP address


def new_key() -> bytes:
    return zmq.curve_keypair()[0]


K1, K2, K3 = new_key(), new_key(), new_key()


def line(key: bytes, *rest: str) -> str:
    return " ".join([key.decode(), *rest])


def write_whitelist(keys_dir: Path, *lines: str) -> None:
    """Replace whitelist.txt the way an editor that renames would."""
    tmp = keys_dir / "whitelist.txt.new"
    tmp.write_text("".join(entry + "\n" for entry in lines))
    os.replace(tmp, keys_dir / whitelist.FILENAME)


# --------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------

def test_good_lines_parse_with_comments_blank_lines_and_pins():
    text = "\n".join([
        "# a comment",
        "",
        "   " + line(K1, "physics", "PHYSICS_ENGINE", "ipc") + "   ",
        line(K2, "reasoner", "reasoning_engine", "10.0.0.0/24") + "\t",
        line(K3, "memory-1", "2"),
        "  # indented comment",
    ])
    assert parse(text) == [
        Entry(K1, "physics", pb.PHYSICS_ENGINE, "ipc"),
        Entry(K2, "reasoner", pb.REASONING_ENGINE, "10.0.0.0/24"),
        Entry(K3, "memory-1", pb.MEMORY_SYSTEM, None),
    ]


def test_orchestrator_kind_zero_is_a_real_kind():
    (entry,) = parse(line(K1, "orc", "ORCHESTRATOR"))
    assert entry.kind == pb.ORCHESTRATOR == 0 and entry.kind_name() == "ORCHESTRATOR"


def test_an_entry_line_round_trips_through_parse():
    entries = [Entry(K1, "a", pb.CLI_CONTROLLER, "192.168.1.0/24"), Entry(K2, "b", pb.GEMINI_AGENT)]
    assert parse("\n".join(e.line() for e in entries)) == entries


def test_empty_text_is_an_empty_whitelist():
    assert parse("") == [] and parse("# only comments\n\n") == []


@pytest.mark.parametrize("bad,message", [
    (line(K1, "physics"), "expected 'PUBLIC_KEY NAME KIND"),
    (line(K1, "physics", "PHYSICS_ENGINE", "ipc", "extra", "more"), "expected 'PUBLIC_KEY"),
    ("notakey physics PHYSICS_ENGINE", "not a Z85"),
    (line(K1, "bad/name", "PHYSICS_ENGINE"), "identity name"),
    (line(K1, "physics", "WARP_DRIVE"), "unknown component kind"),
    (line(K1, "physics", "99"), "unknown component kind"),
    (line(K1, "physics", "PHYSICS_ENGINE", "somewhere"), "source pin"),
    (line(K1, "physics", "PHYSICS_ENGINE", "10.0.0.0/33"), "source pin"),
])
def test_bad_line_is_refused_with_its_line_number(bad, message):
    text = "# header\n" + line(K2, "fine", "ORCHESTRATOR") + "\n\n" + bad + "\n"
    with pytest.raises(WhitelistError, match=message) as info:
        parse(text, "keys/whitelist.txt")
    assert "keys/whitelist.txt:4:" in str(info.value)


def test_duplicate_key_is_refused():
    with pytest.raises(WhitelistError, match=r"whitelist.txt:2: duplicate"):
        parse(line(K1, "a", "ORCHESTRATOR") + "\n" + line(K1, "b", "ORCHESTRATOR"))


def test_duplicate_name_is_refused():
    with pytest.raises(WhitelistError, match=r"whitelist.txt:3: duplicate key or name 'a'"):
        parse("\n".join([line(K1, "a", "ORCHESTRATOR"), "#", line(K2, "a", "MEMORY_SYSTEM")]))


def test_a_name_may_have_one_next_key_while_it_rotates():
    entries = parse(line(K1, "a", "ORCHESTRATOR") + "\n" + line(K2, "a", "ORCHESTRATOR", "next"))
    assert [e.rotating for e in entries] == [False, True]
    with pytest.raises(WhitelistError, match="duplicate"):
        parse("\n".join([line(K1, "a", "ORCHESTRATOR"), line(K2, "a", "ORCHESTRATOR", "next"),
                         line(K3, "a", "ORCHESTRATOR", "ipc", "next")]))


# --------------------------------------------------------------------------------------
# Address pins, with addresses as libzmq reports them to ZAP
# --------------------------------------------------------------------------------------

def test_unpinned_entry_admits_any_address():
    entry = Entry(K1, "a", 0)
    assert entry.admits_address(IPC_PEER) and entry.admits_address(TCP_PEER)
    assert entry.admits_address("2001:db8::1")


def test_ipc_pin_admits_ipc_peers_only():
    entry = Entry(K1, "physics", pb.PHYSICS_ENGINE, "ipc")
    assert entry.admits_address(IPC_PEER)
    assert not entry.admits_address(TCP_PEER)
    assert not entry.admits_address("::1")


def test_ip_pin_admits_that_address_only():
    entry = Entry(K1, "a", 0, "127.0.0.1")
    assert entry.admits_address("127.0.0.1")
    assert not entry.admits_address("127.0.0.2")
    assert not entry.admits_address(IPC_PEER)


def test_cidr_pin_admits_addresses_inside_the_network():
    entry = Entry(K1, "a", 0, "10.0.0.0/24")
    assert entry.admits_address("10.0.0.7") and entry.admits_address("10.0.0.255")
    assert not entry.admits_address("10.0.1.7")
    assert not entry.admits_address(IPC_PEER)
    assert not entry.admits_address("")


def test_ipv6_pins_work():
    entry = Entry(K1, "a", 0, "fd00::/8")
    assert entry.admits_address("fd12::1")
    assert not entry.admits_address("fe80::1")
    assert not entry.admits_address("10.0.0.1")


def test_ipv4_pin_admits_an_ipv4_mapped_peer_of_a_dual_stack_socket():
    entry = Entry(K1, "a", 0, "10.0.0.0/24")
    assert entry.admits_address("::ffff:10.0.0.7")
    assert not entry.admits_address("::ffff:10.0.1.7")


# --------------------------------------------------------------------------------------
# The live whitelist
# --------------------------------------------------------------------------------------

def test_missing_file_is_an_empty_whitelist(tmp_path):
    wl = Whitelist(tmp_path)
    assert wl.is_empty() and wl.entries == [] and wl.lookup(K1) is None
    assert wl.reload_error is None


def test_lookup_and_by_name(tmp_path):
    write_whitelist(tmp_path, line(K1, "a", "ORCHESTRATOR"), line(K2, "b", "MEMORY_SYSTEM"))
    wl = Whitelist(tmp_path)
    assert wl.lookup(K2).name == "b"
    assert wl.by_name("a").public_key == K1
    assert wl.by_name("nobody") is None and wl.lookup(K3) is None


def test_refresh_picks_up_an_added_and_a_removed_key(tmp_path):
    write_whitelist(tmp_path, line(K1, "a", "ORCHESTRATOR"))
    wl = Whitelist(tmp_path)
    assert wl.refresh() is False  # nothing changed

    add_entry(tmp_path, Entry(K2, "b", pb.MEMORY_SYSTEM))
    assert wl.refresh() is True
    assert wl.lookup(K2).name == "b"

    remove_entry(tmp_path, "a")
    assert wl.refresh() is True
    assert wl.lookup(K1) is None and wl.lookup(K2) is not None


def test_refresh_picks_up_an_in_place_edit(tmp_path):
    write_whitelist(tmp_path, line(K1, "a", "ORCHESTRATOR"))
    wl = Whitelist(tmp_path)
    with open(tmp_path / whitelist.FILENAME, "a") as fh:  # appending changes the size
        fh.write(line(K2, "b", "MEMORY_SYSTEM") + "\n")
    assert wl.refresh() is True and wl.lookup(K2) is not None


def test_deleting_the_file_admits_nobody(tmp_path):
    write_whitelist(tmp_path, line(K1, "a", "ORCHESTRATOR"))
    wl = Whitelist(tmp_path)
    (tmp_path / whitelist.FILENAME).unlink()
    assert wl.refresh() is True and wl.is_empty()


def test_broken_edit_keeps_previous_entries_and_sets_reload_error(tmp_path):
    write_whitelist(tmp_path, line(K1, "a", "ORCHESTRATOR"))
    wl = Whitelist(tmp_path)

    write_whitelist(tmp_path, line(K1, "a", "ORCHESTRATOR"), line(K2, "b", "NO_SUCH_KIND"))
    assert wl.refresh() is False
    assert wl.lookup(K1) is not None and wl.lookup(K2) is None
    assert ":2:" in wl.reload_error and "unknown component kind" in wl.reload_error
    assert wl.refresh() is False  # the same broken file is not re-read

    write_whitelist(tmp_path, line(K1, "a", "ORCHESTRATOR"), line(K2, "b", "MEMORY_SYSTEM"))
    assert wl.refresh() is True
    assert wl.reload_error is None and wl.lookup(K2) is not None


def test_file_that_is_not_utf8_keeps_previous_entries(tmp_path):
    write_whitelist(tmp_path, line(K1, "a", "ORCHESTRATOR"))
    wl = Whitelist(tmp_path)
    (tmp_path / whitelist.FILENAME).write_bytes(b"\xff\xfe garbage\n")
    assert wl.refresh() is False
    assert wl.lookup(K1) is not None and wl.reload_error


def test_broken_file_at_start_is_an_error(tmp_path):
    write_whitelist(tmp_path, "garbage")
    with pytest.raises(WhitelistError, match="whitelist.txt:1:"):
        Whitelist(tmp_path)


# --------------------------------------------------------------------------------------
# Atomic, locked edits
# --------------------------------------------------------------------------------------

def test_add_creates_the_directory_and_file_and_list_reads_them(tmp_path):
    keys_dir = tmp_path / "keys"
    add_entry(keys_dir, Entry(K1, "a", pb.PHYSICS_ENGINE, "ipc"))
    assert read_entries(keys_dir) == [Entry(K1, "a", pb.PHYSICS_ENGINE, "ipc")]
    assert oct((keys_dir / whitelist.FILENAME).stat().st_mode & 0o777) == oct(0o644)
    text = (keys_dir / whitelist.FILENAME).read_text()
    assert text.startswith("#") and line(K1, "a", "PHYSICS_ENGINE", "ipc") in text


def test_add_refuses_a_duplicate_key_or_name_unless_replace(tmp_path):
    add_entry(tmp_path, Entry(K1, "a", 0))
    with pytest.raises(WhitelistError, match="already in the whitelist"):
        add_entry(tmp_path, Entry(K1, "other", 0))
    with pytest.raises(WhitelistError, match="already in the whitelist"):
        add_entry(tmp_path, Entry(K2, "a", 0))
    add_entry(tmp_path, Entry(K2, "a", 3), replace=True)
    assert read_entries(tmp_path) == [Entry(K2, "a", 3)]


def test_remove_by_name_or_key(tmp_path):
    add_entry(tmp_path, Entry(K1, "a", 0))
    add_entry(tmp_path, Entry(K2, "b", 0))
    assert remove_entry(tmp_path, "a").public_key == K1
    assert remove_entry(tmp_path, K2.decode()).name == "b"
    assert read_entries(tmp_path) == []


def test_remove_of_an_unknown_name_is_an_error(tmp_path):
    with pytest.raises(WhitelistError, match="no whitelist"):
        remove_entry(tmp_path / "missing", "a")
    add_entry(tmp_path, Entry(K1, "a", 0))
    with pytest.raises(WhitelistError, match="no whitelist entry named 'zz'"):
        remove_entry(tmp_path, "zz")


def test_edits_leave_no_temp_files(tmp_path):
    add_entry(tmp_path, Entry(K1, "a", 0))
    remove_entry(tmp_path, "a")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".whitelist.lock", "whitelist.txt"]


def test_an_edit_of_a_broken_file_is_refused_and_changes_nothing(tmp_path):
    write_whitelist(tmp_path, "garbage")
    with pytest.raises(WhitelistError, match=":1:"):
        add_entry(tmp_path, Entry(K1, "a", 0))
    assert (tmp_path / whitelist.FILENAME).read_text() == "garbage\n"


def _add_many(keys_dir: str, worker: int, count: int) -> None:
    for i in range(count):
        add_entry(Path(keys_dir), Entry(new_key(), f"w{worker}-{i}", pb.MEMORY_SYSTEM))


def test_concurrent_adds_from_several_processes_all_land(tmp_path):
    workers, each = 4, 10
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        pool.starmap(_add_many, [(str(tmp_path), w, each) for w in range(workers)])
    names = {e.name for e in read_entries(tmp_path)}
    assert names == {f"w{w}-{i}" for w in range(workers) for i in range(each)}


def test_a_forced_reread_of_a_broken_file_never_raises_even_with_no_entries(tmp_path):
    wl = Whitelist(tmp_path)  # no file yet: empty, and that is a good state
    (tmp_path / whitelist.FILENAME).write_text("# hand edit\nnot-a-key x MEMORY_SYSTEM\n")
    assert wl.refresh(force=True) is False  # SIGHUP on a broker with no entries yet
    assert wl.is_empty() and ":2:" in wl.reload_error


def test_a_broken_file_at_start_is_refused(tmp_path):
    (tmp_path / whitelist.FILENAME).write_text("not-a-key x MEMORY_SYSTEM\n")
    with pytest.raises(WhitelistError, match=":1:"):
        Whitelist(tmp_path)
