"""The protocol package's errors: one root, a subclass per layer.

Every error carries a human-readable reason in ``args[0]`` (also ``.reason``). The root is a
``ValueError`` itself because MicroPython cannot combine an ``Exception`` subclass with a
builtin exception in one class (``class E(Base, ValueError)`` fails there).
"""


class ProtocolError(ValueError):
    """Root of every error raised by protocol/: ``args[0]`` is the reason."""

    @property
    def reason(self) -> str:
        return self.args[0] if self.args else ""


class DecodeError(ProtocolError):
    """Bytes that are not an acceptable CBOR item under SPEC §4 (the reason says why)."""


class EncodeError(ProtocolError):
    """A value the codec cannot encode (type, range, NaN/Inf, nesting, buffer space)."""


class FrameError(ProtocolError):
    """A malformed COBS encoding or frame (SPEC §2-3)."""


class MessageError(ProtocolError):
    """A message with a bad envelope or body; ``code`` is the SPEC §6 reason code."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
