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


def _identity(obj):
    return obj


try:
    from micropython import const
except ImportError:  # CPython
    const = _identity

if MICROPYTHON:
    import micropython
else:

    class _Emitters:
        """CPython stand-in for the module's emitter decorators: they return the function."""

        native = staticmethod(_identity)
        viper = staticmethod(_identity)

    micropython = _Emitters()
