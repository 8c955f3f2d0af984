"""What the two interpreters provide differently, in one place.

- ``const``: MicroPython's compile-time constant marker, or the identity on CPython.
- ``MICROPYTHON``: True on MicroPython, False on CPython.
- ``micropython``: the module on MicroPython; on CPython a stand-in whose ``native`` and
  ``viper`` decorators return the function unchanged.

Node fast paths use MicroPython's code emitters. Its compiler recognises only decorators spelled
``@micropython.native`` / ``@micropython.viper`` (it never evaluates them), so modules write
exactly that after ``from protocol.compat import micropython``; CPython then calls the
stand-in. ``native`` code is the same Python on both interpreters. Viper code (pointer types,
machine-word integers) stays under ``if MICROPYTHON:`` with a pure twin for CPython.
protocol/ therefore needs a MicroPython port with a native emitter (rp2 and the Unix port
have one). Precompiling those modules with mpy-cross needs ``-march`` (``armv6m`` for a Pico).
"""

import sys

MICROPYTHON = sys.implementation.name == "micropython"

try:
    from micropython import const
except ImportError:  # CPython

    def const(expr):  # type: ignore[no-redef]
        return expr


if MICROPYTHON:
    import micropython
else:

    class micropython:  # type: ignore[no-redef]
        """CPython stand-in for the emitter decorators."""

        @staticmethod
        def native(func):
            return func

        @staticmethod
        def viper(func):
            return func
