"""``spine keys rotate NAME`` and ``spine whitelist revoke NAME``: the key lifecycle commands."""

from __future__ import annotations

import argparse
import time

from spine import paths
from spine.security import revocation, rotation, whitelist

WAIT_POLL_S = 0.1


def run_rotate(args: argparse.Namespace) -> int:
    """Stage NAME's next key and admit it beside the current one; optionally wait for the switch.

    With ``args.wait`` (seconds) it returns 0 once the broker has seen the new key and
    dropped the old one, 1 if that did not happen in time.
    """
    keys_dir = paths.keys_dir(args.keys_dir)
    entry = rotation.begin(keys_dir, args.name)
    print(f"rotating {entry.name}: new key {entry.public_key.decode('ascii')} is admitted beside "
          f"the current one in {keys_dir / whitelist.FILENAME}")
    if getattr(args, "offline", False) and rotation.pending(keys_dir, entry.name):
        rotation.install(keys_dir, entry.name)
        rotation.forget_previous(keys_dir, entry.name)
        print(f"  installed as {entry.name}'s key: the component uses it from its next start")
    elif rotation.pending(keys_dir, entry.name):
        print(f"  staged keypair  {rotation.staging_dir(keys_dir) / (entry.name + '.key_secret')} "
              "(mode 0600)")
        print("  a running component switches over when it next checks "
              "(spine.client.key_switch); for a stopped one use --offline")
    print("  the broker drops the old key once it has seen the new one")
    wait = getattr(args, "wait", None)
    if not wait:
        return 0
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        current = [e for e in whitelist.read_entries(keys_dir) if e.name == entry.name]
        if [(e.public_key, e.rotating) for e in current] == [(entry.public_key, False)]:
            print(f"done: the broker saw the new key of {entry.name}; the old key is dropped")
            return 0
        time.sleep(WAIT_POLL_S)  # polling a file another process rewrites; no event to wait on
    print(f"not done after {wait:g} s: {entry.name} has not connected with its new key yet; "
          "both keys stay admitted until it does")
    return 1


def run_revoke(args: argparse.Namespace) -> int:
    """Revoke every key of NAME for good: into ``revoked.txt``, out of ``whitelist.txt``."""
    keys_dir = paths.keys_dir(args.keys_dir)
    records = revocation.revoke(keys_dir, args.name)
    for record in records:
        print(f"revoked {record.name} key {record.public_key.decode('ascii')} at "
              f"{record.revoked_at}")
    print(f"the broker refuses these keys from its next whitelist check (a fraction of a "
          f"second); the list is {keys_dir / revocation.FILENAME}")
    return 0
