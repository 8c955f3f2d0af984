"""Fixtures for the codec-layer tests: the same vectors on CPython and on MicroPython.

A test that takes ``req`` (a request for tests/protocol/mpy_vectors.py, via parametrize) and
the ``answer`` fixture runs twice: ``answer(req)`` is computed in-process on CPython, and by
the real MicroPython interpreter. MicroPython answers come from one batch: the first time
one is needed, every ``req`` parameter collected in the session is sent to a single
``micropython mpy_vectors.py`` process, so the whole suite starts the interpreter once.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import mpy_vectors as vectors  # tests/protocol is on sys.path: it is not a package
import pytest

from ground.micropython import find_micropython, micropython_path_env

HERE = Path(__file__).resolve().parent
RUNNER = HERE / "mpy_vectors.py"

Answer = dict[str, Any]


def _key(req: Answer) -> str:
    return json.dumps(req, sort_keys=True)


def run_micropython(requests: Iterable[Answer], heapsize: str | None = None) -> list[Answer]:
    """Answers of the MicroPython runner to ``requests``, in order."""
    # raw UTF-8, not \u escapes: MicroPython's json does not join escaped surrogate pairs
    lines = [json.dumps(r, ensure_ascii=False) for r in requests]
    if not lines:
        return []
    cmd = [find_micropython()]
    if heapsize:
        cmd += ["-X", f"heapsize={heapsize}"]
    proc = subprocess.run(
        [*cmd, str(RUNNER)],
        input="\n".join(lines) + "\n",
        capture_output=True,
        encoding="utf-8",
        env=micropython_path_env(),
        timeout=300,
        check=False,
    )
    out = proc.stdout.splitlines()
    if proc.returncode != 0 or len(out) != len(lines):
        raise AssertionError(
            f"micropython runner failed (exit {proc.returncode}, {len(out)} of {len(lines)} "
            f"answers)\nstderr:\n{proc.stderr[-3000:]}"
        )
    return [json.loads(line) for line in out]


class MicroPythonBatch:
    """Answers from one MicroPython process for every request collected in the session."""

    def __init__(self, pending: list[Answer]) -> None:
        self._pending = pending
        self._answers: dict[str, Answer] = {}

    def __call__(self, req: Answer) -> Answer:
        key = _key(req)
        if key not in self._answers:
            batch = [r for r in self._pending if _key(r) not in self._answers]
            if all(_key(r) != key for r in batch):
                batch.append(req)
            for r, a in zip(batch, run_micropython(batch), strict=True):
                self._answers[_key(r)] = a
            self._pending = []
        return self._answers[key]


@pytest.fixture(scope="session")
def micropython_batch(request: pytest.FixtureRequest) -> MicroPythonBatch:
    pending = []
    for item in request.session.items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if isinstance(params.get("req"), dict):
            pending.append(params["req"])
    return MicroPythonBatch(pending)


@pytest.fixture(
    params=["cpython", pytest.param("micropython", marks=pytest.mark.micropython)],
)
def answer(request: pytest.FixtureRequest) -> Callable[[Answer], Answer]:
    """The runner's answer to a request, on the interpreter named by the parameter."""
    if request.param == "cpython":
        return vectors.handle  # type: ignore[no-any-return]
    return request.getfixturevalue("micropython_batch")  # type: ignore[no-any-return]


def _both(requests: list[Answer]) -> tuple[list[Answer], list[Answer]]:
    return [vectors.handle(r) for r in requests], run_micropython(requests)


@pytest.fixture(scope="session")
def on_both() -> Callable[[list[Answer]], tuple[list[Answer], list[Answer]]]:
    """``on_both(requests)``: the answers from CPython (in-process) and from one MicroPython
    process, for corpora too large to parametrize."""
    return _both
