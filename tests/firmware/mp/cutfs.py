"""A flash that loses power after a given number of steps, for tests/firmware/test_storage.py.

Installed over a module's ``open`` and ``os`` (``install(module, budget)``): every byte
written and every rename or remove is one step; when the budget is spent the step raises
PowerCut, after the bytes before it have reached the file (a write is cut mid-way, as a power
cut cuts a flash write). ``budget=None``: no cut, steps counted in ``used``.
"""

import os as _os


class PowerCut(BaseException):  # the node cannot catch a power cut: no Exception
    pass


class _Flash:
    def __init__(self, budget):
        self.budget = budget
        self.used = 0

    def step(self, n):
        """Take up to n steps; return how many were allowed (raise when none is left)."""
        if self.budget is None:
            self.used += n
            return n
        left = self.budget - self.used
        take = n if n <= left else left
        self.used += take
        return take


class _File:
    def __init__(self, flash, f):
        self._flash = flash
        self._f = f

    def write(self, data):
        n = len(data)
        ok = self._flash.step(n)
        if ok:
            self._f.write(data[:ok])
        if ok < n:
            self._f.close()
            raise PowerCut()
        return n

    def read(self, *a):
        return self._f.read(*a)

    def seek(self, *a):  # an open log file wrapped by a test (node.eventlog)
        return self._f.seek(*a)

    def readinto(self, buf):
        return self._f.readinto(buf)

    def flush(self):
        return self._f.flush()

    def close(self):
        self._f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._f.close()


class _Os:
    def __init__(self, flash):
        self._flash = flash

    def _one(self):
        if not self._flash.step(1):
            raise PowerCut()

    def rename(self, a, b):
        self._one()
        _os.rename(a, b)

    def remove(self, p):
        self._one()
        _os.remove(p)

    def __getattr__(self, name):
        return getattr(_os, name)


def install(module, budget):
    """Give module a flash that cuts after budget steps; return the flash (see .used)."""
    flash = _Flash(budget)

    def cut_open(path, mode="r"):
        f = open(path, mode)
        return _File(flash, f) if "w" in mode or "a" in mode or "+" in mode else f

    module.open = cut_open
    module.os = _Os(flash)
    return flash


def uninstall(module):
    module.open = open
    module.os = _os
