"""Replay the falsifying sequences a model-based run printed, and shrink them one step at a time.

    .venv/bin/python hack/findings/replay.py hack/findings/model-2000x80-91d2ba5.log [N,M] [--shrink]

Faster than hypothesis's own shrinking on long stateful runs (which gave up on these), and deterministic: the
printed steps are run against tests/unit/reconcile/test_model.py's state machine directly, invariants after
each step. kopf posts Events only inside a running operator, so they are recorded here (as the tests'
conftest does); without that every reconcile dies in kopf.info and nothing reproduces.
"""

from __future__ import annotations

import ast
import json
import logging
import re
import sys
from pathlib import Path
from typing import Any

import kopf

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
kopf.warn = lambda *_, **__: None
kopf.info = lambda *_, **__: None

from tests.unit.reconcile.test_model import SERVER, Attachments  # noqa: E402

Step = tuple[str, dict[str, Any]]


def parse(log: str) -> list[list[Step]]:
    """Every 'state = Attachments()' block of the log, as (rule, arguments) steps."""
    seqs: list[list[Step]] = []
    current: list[Step] | None = None
    draw: Any = None
    for raw in Path(log).read_text().splitlines():
        line = raw.strip().lstrip("|").strip()
        if line.startswith("state = Attachments()"):
            current = []
            seqs.append(current)
            continue
        if current is None:
            continue
        if m := re.match(r"Draw \d+: (.*)$", line):
            draw = ast.literal_eval(m.group(1))
            continue
        m = re.match(r"state\.(\w+)\((.*)\)$", line)
        if m is None:
            if line.startswith(("+", "Traceback")):
                current = None
            continue
        name, args = m.groups()
        if name.startswith(("no_nic", "an_ambiguity")) or name == "teardown":
            continue
        if args == "data=data(...)":
            current.append((name, {"port": draw}))
        else:
            call = ast.parse(f"f({args})", mode="eval").body
            assert isinstance(call, ast.Call)
            current.append((name, {k.arg: ast.literal_eval(k.value) for k in call.keywords if k.arg}))
    return seqs


class _Drawn:
    def __init__(self, value: Any) -> None:
        self.value = value

    def draw(self, _strategy: Any) -> Any:
        return self.value


def run(seq: list[Step]) -> str | None:
    """The first assertion that fails, or None."""
    machine = Attachments()
    try:
        for name, kwargs in seq:
            if name == "detach_out_of_band":
                if kwargs["port"] not in machine.h.cloud.servers[SERVER]:
                    continue  # not there in this (shrunk) history: the rule's precondition would skip it
                machine.detach_out_of_band(_Drawn(kwargs["port"]))
            else:
                getattr(machine, name)(**kwargs)
            machine.no_nic_attached_twice_for_one_attachment()
            machine.no_nic_detached_that_the_operator_did_not_own()
            machine.an_ambiguity_is_real()
        return None
    except AssertionError as exc:
        return str(exc).split("\n")[0]
    finally:
        machine.teardown()


def kind(message: str | None) -> str | None:
    """A failure's kind: port IDs change as steps go, the broken promise does not."""
    return None if message is None else re.sub(r"(port|free)-\d+", "P", message)


def shrink(seq: list[Step]) -> list[Step]:
    want = kind(run(seq))
    changed = True
    while changed:
        changed = False
        i = 0
        while i < len(seq):
            trial = seq[:i] + seq[i + 1 :]
            if kind(run(trial)) == want:
                seq, changed = trial, True
            else:
                i += 1
    return seq


def main() -> None:
    logging.disable(logging.CRITICAL)
    seqs = parse(sys.argv[1])
    picked = [a for a in sys.argv[2:] if not a.startswith("--")]
    which = [int(n) for n in picked[0].split(",")] if picked else range(len(seqs))
    for n in which:
        message = run(seqs[n])
        print(f"sequence {n}: {len(seqs[n])} steps -> {message}")
        if message is not None and "--shrink" in sys.argv:
            small = shrink(seqs[n])
            print(f"  shrunk to {len(small)} steps -> {run(small)}")
            print("  " + json.dumps(small))


if __name__ == "__main__":
    main()
