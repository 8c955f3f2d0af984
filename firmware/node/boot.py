"""The node's power-up: the services built around a board, in a module imported for the boot
and let go after.

``build(app, board)``: every service built and registered with the dispatcher, in dependency
order, returned for node.app.App to hold (the App then makes its tasks). On a stock Pico a
module's bytecode stays in the heap while the module is held: this code runs once per boot, so
nothing holds it (node.call). Everything here allocates.
"""

from micropython import const

from node import storage
from node.auth import Auth
from node.bulk import Bulk
from node.commands import Commands
from node.dispatcher import Dispatcher
from node.eventlog import EventLog
from node.events import Events
from node.fdir import Fdir
from node.housekeeping import Housekeeping
from node.link import Link
from node.modes import Modes
from node.params import ParamCommands, Params
from node.plant import Plant
from node.sequencer import Sequencer
from node.telemetry import Telemetry, make_store
from node.timesvc import TimeService
from node.ttqueue import TimeTagQueue

_PARAM_PLANT_SEED = const(11)  # protocol.ids (tests/firmware/test_consts.py)


def build(app, board):
    """The services, built and registered; returned in the order node.app.App holds them."""
    root = board.fs_root
    clock = TimeService(board)
    tlm = make_store()
    boot_count = storage.next_boot_count(root)
    reset_cause = board.reset_cause()
    params = Params(root)
    params.boot(board.config)
    link = Link(board, clock, tlm)
    log = EventLog(root, board.fs_sync, boot_count)
    events = Events(link, tlm, clock, log, params)
    events.start(log.open())
    modes = Modes(tlm, board, events, params)
    plant = Plant(tlm, events.emit, params.get(_PARAM_PLANT_SEED))
    if board.mcu_temp_c() is not None:
        plant.mcu_temp_source = board.mcu_temp_c
    modes.attach(plant)
    fdir = Fdir(tlm, plant, modes, events.emit, params)
    telemetry = Telemetry(tlm, clock, link, boot_count, reset_cause)
    board_node_id = board.node_id()
    hk = Housekeeping(link, telemetry, params, clock)
    auth = Auth(root, tlm, events, clock.now_ms)
    d = Dispatcher(link, modes, events, tlm, boot_count, auth, params)
    auth.register(d)
    bulk = Bulk(link, log, d)
    ParamCommands(params, link, events).register(d)
    clock.attach(tlm)
    bulk.register(d)
    tt = TimeTagQueue(root, clock, d, events, log, params, tlm, bulk)
    tt.register(d)
    Commands(app).register(d)
    sq = Sequencer(root, tlm, events, modes, d, clock.now_ms)
    sq.register(d)
    return (clock, tlm, boot_count, reset_cause, params, link, log, events, modes, plant, fdir,
            telemetry, board_node_id, hk, auth, d, bulk, tt, sq)
