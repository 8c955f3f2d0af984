"""Entry point of the simulated node on the MicroPython Unix port.

Run by ground/simnode.py (which provides the pty, the state directory, the reset cause and
the watchdog pipe through the environment; see board/sim.py):

    MICROPYPATH=firmware:. micropython -X heapsize=192K firmware/sim_main.py

stdout is the link: nothing may print to it. Diagnostics go to stderr (the host's node.log).
"""

import sys

if ".frozen" not in sys.path:  # MICROPYPATH replaces the default path, frozen asyncio too
    sys.path.append(".frozen")


def main():
    try:
        import node

        node.preload()
        from board.sim import Board
        from node.app import run

        run(Board())
    except Exception as e:  # the Unix port would print it on stdout: the link
        sys.print_exception(e, sys.stderr)  # type: ignore[arg-type]
        sys.exit(1)


main()
