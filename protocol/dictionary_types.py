"""Record types of the dictionary: commands, arguments, channels, packets, events, parameters.

Plain classes (no dataclasses or enum) so the module imports on MicroPython as well as CPython.
The node never imports this: it carries the compact tables generated into node_dictionary.py.
"""

# Value types shared by arguments, channels and parameters.
BOOL = "bool"
U8 = "u8"
U16 = "u16"
U32 = "u32"
I32 = "i32"
F32 = "f32"
ANY = "any"
TYPES = (BOOL, U8, U16, U32, I32, F32, ANY)

# Type codes used on the node (index into TYPES).
TYPE_CODES = {name: code for code, name in enumerate(TYPES)}

# Integer ranges implied by each type.
TYPE_RANGES = {
    BOOL: (0, 1),
    U8: (0, 0xFF),
    U16: (0, 0xFFFF),
    U32: (0, 0xFFFFFFFF),
    I32: (-0x80000000, 0x7FFFFFFF),
}

# Modes and the bit masks commands use to say where they are allowed.
MODE_BOOT = 0
MODE_SAFE = 1
MODE_NOMINAL = 2
MODE_SCIENCE = 3
MODE_NAMES = {
    MODE_BOOT: "BOOT", MODE_SAFE: "SAFE", MODE_NOMINAL: "NOMINAL", MODE_SCIENCE: "SCIENCE",
}
IN_SAFE = 1 << MODE_SAFE
IN_NOMINAL = 1 << MODE_NOMINAL
IN_SCIENCE = 1 << MODE_SCIENCE
IN_ANY = IN_SAFE | IN_NOMINAL | IN_SCIENCE

# Event severities.
DEBUG = 0
INFO = 1
WARNING = 2
ERROR = 3
FATAL = 4
SEVERITY_NAMES = ("debug", "info", "warning", "error", "fatal")


class Arg:
    """One positional argument of a command."""

    def __init__(self, name, type, lo=None, hi=None, unit="", help="", enum=None):
        self.name = name
        self.type = type
        self.lo = lo
        self.hi = hi
        self.unit = unit
        self.help = help
        self.enum = enum  # {value: "NAME"} for arguments that take named values


class Command:
    def __init__(self, id, name, args, modes, help, hazardous=False, test_only=False, result="",
                 immediate=False):
        self.id = id
        self.name = name
        self.args = args
        self.modes = modes
        self.help = help
        self.hazardous = hazardous
        self.test_only = test_only
        self.result = result  # what the `completed` verification carries, if anything
        self.immediate = immediate  # never time-tagged (SPEC §11.2): a bulk downlink, say


class Channel:
    """A telemetry channel. Limits are (low, high) pairs; None means no limit on that side."""

    def __init__(self, id, name, type, unit, description, yellow=None, red=None, enum=None):
        self.id = id
        self.name = name
        self.type = type
        self.unit = unit
        self.description = description
        self.yellow = yellow
        self.red = red
        self.enum = enum


class Packet:
    def __init__(self, id, name, channels, rate_hz, description):
        self.id = id
        self.name = name
        self.channels = channels  # channel names, in wire order
        self.rate_hz = rate_hz
        self.description = description


class Event:
    def __init__(self, id, name, severity, format, args=()):
        self.id = id
        self.name = name
        self.severity = severity
        self.format = format  # str.format template over the argument names
        self.args = args


class Param:
    def __init__(self, id, name, type, default, lo, hi, unit, help, persisted=True):
        self.id = id
        self.name = name
        self.type = type
        self.default = default
        self.lo = lo
        self.hi = hi
        self.unit = unit
        self.help = help
        self.persisted = persisted
