"""Settings for every test run in this repository.

Ctrl-C must reach the programs the tests start: several tests send SIGINT to a ground process
and expect its clean stop (exit 130). A shell without job control starts background commands
with SIGINT ignored (`make test &`, `nohup`, some CI runners), and an ignored signal stays
ignored across fork and exec, so those programs would never see it. Python's own handler is
restored here instead; the children then start with SIGINT at its default, as from a terminal.
"""

import signal

if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
