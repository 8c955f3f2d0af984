"""The dictionary: every command, telemetry channel, housekeeping packet, event and parameter.

This is the one definition. The ground reads it whole (names, units, limits, help); the node
carries only the compact tables that tools/gen_node_dictionary.py derives from it into
protocol/node_dictionary.py, and the dictionary hash covers exactly those tables.
"""

from protocol.dictionary_types import (
    ANY,
    BOOL,
    DEBUG,
    ERROR,
    F32,
    FATAL,
    I32,
    IN_ANY,
    IN_NOMINAL,
    IN_SAFE,
    IN_SCIENCE,
    INFO,
    U8,
    U16,
    U32,
    WARNING,
    Arg,
    Channel,
    Command,
    Event,
    Packet,
    Param,
)

# --- Named values -------------------------------------------------------------------------

MODES = {0: "BOOT", 1: "SAFE", 2: "NOMINAL", 3: "SCIENCE"}
SETTABLE_MODES = {1: "SAFE", 2: "NOMINAL", 3: "SCIENCE"}

# Switched load channels of the module's power bus, in channel-number order.
# (name, nominal current A, over-current trip A, essential: never shed by FDIR)
LOADS = (
    ("comms_relay", 0.60, 1.50, True),
    ("seismometer", 0.15, 0.50, False),
    ("radiation_monitor", 0.20, 0.60, False),
    ("dust_camera", 0.45, 1.20, False),
    ("payload_a", 1.20, 2.50, False),
    ("payload_b", 0.90, 2.00, False),
    ("rover_charger", 2.50, 4.50, False),
    ("isru_demo", 1.80, 3.50, False),
    ("heater_battery", 1.40, 2.80, True),
    ("heater_electronics", 0.80, 1.80, True),
)
LOAD_NAMES = {i: load[0] for i, load in enumerate(LOADS)}
HEATER_LOADS = (8, 9)  # load channel of heater 0 (battery) and heater 1 (electronics)
HEATERS = {0: "battery", 1: "electronics"}
HEATER_MODES = {0: "OFF", 1: "AUTO", 2: "ON"}

RESET_CAUSES = {0: "POWER_ON", 1: "WATCHDOG", 2: "COMMANDED", 3: "MAINTENANCE", 4: "SOFT"}
# Why the node forced SAFE: the argument of the safe_mode event (modes.force_safe).
# LOW_CHARGE: FDIR, battery charge below shed_soc_pct or in red; TASK_CRASH: a node task
# raised (the task_crashed event names it); SEQUENCE: a stored sequence's step failed with
# on_fail SAFE (SPEC §12).
SAFE_REASONS = {1: "LOW_CHARGE", 2: "TASK_CRASH", 3: "SEQUENCE"}
# Why parameters fell back to their defaults at boot (params_defaulted event).
PARAMS_DEFAULT_REASONS = {1: "MISSING", 2: "CORRUPT", 3: "INVALID"}

# Sensors that fault injection can fail or stick.
SENSORS = {0: "battery_voltage", 1: "battery_temp", 2: "electronics_temp", 3: "solar_current",
           4: "radiation", 5: "surface_temp"}
FAULTS = {0: "CLEAR", 1: "SENSOR_FAIL", 2: "SENSOR_STUCK", 3: "BATTERY_DRAIN",
          4: "TRIP_CHANNEL", 5: "HANG_TASK"}
# Node tasks, as numbered in watchdog and crash events and in fault injection.
TASKS = {0: "link", 1: "telemetry", 2: "plant", 3: "fdir", 4: "watchdog", 5: "eventlog",
         6: "timetag", 7: "sequencer"}
BULK_TYPES = {1: "event_log", 2: "dictionary", 4: "tt_queue"}
# Why a time-tagged command did not run (the tt_not_run event, SPEC §11.3).
TT_NOT_RUN_REASONS = {1: "DELETED", 2: "CLEARED", 3: "TOO_LATE"}
# Who may command the node (SPEC §10.6): the auth_state channel, the auth_open event.
AUTH_STATES = {0: "OPEN_NO_KEY", 1: "OPEN_BY_COMMAND", 2: "ENFORCED"}
# What key_changed reports (SPEC §10.7).
KEY_CHANGES = {1: "ROTATED", 2: "REVOKED", 3: "OLD_GENERATION_DROPPED"}
# Housekeeping packets by id, for the commands that name one (the same ids and names as
# PACKETS below; a test checks they agree).
PACKET_NAMES = {1: "power", 2: "environment", 3: "link", 4: "loads", 5: "thermal", 6: "battery",
                7: "solar", 8: "load_status", 9: "commanding", 10: "time", 12: "sequence"}
# Stored sequences (SPEC §12).
SEQ_SLOTS = 4
SEQ_STATES = {0: "EMPTY", 1: "IDLE", 2: "RUNNING", 3: "DONE", 4: "FAILED", 5: "STOPPED"}
SEQ_TRIGGERS = {0: "NONE", 1: "SAFE_ENTRY", 2: "SUNSET", 3: "SUNRISE", 4: "BATTERY_BELOW"}
# What started a run (seq_started event): a command, or a trigger (the SEQ_TRIGGERS codes).
SEQ_CAUSES = {0: "COMMAND", 1: "SAFE_ENTRY", 2: "SUNSET", 3: "SUNRISE", 4: "BATTERY_BELOW"}
SEQ_OPS = {0: "<", 1: "<=", 2: "==", 3: ">=", 4: ">", 5: "!="}
SEQ_ON_FAIL = {0: "STOP", 1: "SKIP", 2: "SAFE"}
# Why seq_upload_commit found an image invalid (seq_invalid event, SPEC §12.3).
SEQ_PROBLEMS = {1: "CBOR", 2: "FORMAT", 3: "DICT_HASH", 4: "NAME", 5: "STEPS", 6: "STEP_SHAPE",
                7: "COMMAND", 8: "ARGUMENTS", 9: "CHANNEL", 10: "OP", 11: "VALUE",
                12: "ON_FAIL", 13: "TIME"}
SEQ_MAX_IMAGE = 4096  # bytes of a sequence image
SEQ_MAX_PART = 128  # data bytes per seq_upload_part

# --- Commands -----------------------------------------------------------------------------

COMMANDS = (
    Command(1, "noop", (), IN_ANY,
            "Do nothing. Answers accepted then completed: the link check (ping)."),
    Command(2, "set_mode",
            (Arg("mode", U8, 1, 3, help="target mode", enum=SETTABLE_MODES),), IN_ANY,
            "Change mode: SAFE to NOMINAL, NOMINAL and SCIENCE either way, any mode to SAFE. "
            "Entering SCIENCE needs battery charge above science_min_soc_pct."),
    Command(3, "load_switch",
            (Arg("channel", U8, 0, len(LOADS) - 1, help="load channel", enum=LOAD_NAMES),
             Arg("on", BOOL, help="true to switch on")),
            IN_NOMINAL | IN_SCIENCE,
            "Switch a load channel on or off. Payloads switch on only in SCIENCE; a tripped "
            "channel must be reset first (load_reset_trip)."),
    Command(4, "load_reset_trip",
            (Arg("channel", U8, 0, len(LOADS) - 1, help="load channel", enum=LOAD_NAMES),),
            IN_ANY, "Clear a channel's over-current trip. The channel stays off."),
    Command(5, "heater_mode",
            (Arg("heater", U8, 0, 1, help="heater", enum=HEATERS),
             Arg("mode", U8, 0, 2, help="OFF, AUTO (thermostat) or ON", enum=HEATER_MODES)),
            IN_ANY, "Set a heater's control mode."),
    Command(6, "heater_setpoint",
            (Arg("heater", U8, 0, 1, help="heater", enum=HEATERS),
             Arg("setpoint", F32, -40.0, 40.0, "degC", "thermostat setpoint")),
            IN_ANY, "Set a heater thermostat setpoint (the same value as its parameter)."),
    Command(7, "param_get",
            (Arg("param", U16, 1, 0xFFFF, help="parameter id"),), IN_ANY,
            "Read a parameter. The node sends a parameter message; completed carries the value.",
            result="value"),
    Command(8, "param_set",
            (Arg("param", U16, 1, 0xFFFF, help="parameter id"),
             Arg("value", ANY, help="new value, checked against the parameter's type and range")),
            IN_ANY, "Set a parameter in RAM (param_save persists it)."),
    Command(9, "param_save", (), IN_ANY,
            "Persist all persisted parameters to flash, atomically."),
    Command(10, "param_load", (), IN_ANY,
            "Reload parameters from flash, discarding unsaved changes."),
    Command(11, "param_reset", (), IN_ANY,
            "Reset every parameter to its default in RAM (param_save persists it).",
            hazardous=True),
    Command(12, "hk_rate",
            (Arg("packet", U8, 1, max(PACKET_NAMES), help="housekeeping packet", enum=PACKET_NAMES),
             Arg("rate", F32, 0.1, 50.0, "Hz", "packets per second")),
            IN_ANY, "Set a housekeeping packet's rate."),
    Command(13, "hk_enable",
            (Arg("packet", U8, 1, max(PACKET_NAMES), help="housekeeping packet", enum=PACKET_NAMES),
             Arg("enabled", BOOL, help="true to send the packet")),
            IN_ANY, "Enable or disable a housekeeping packet."),
    Command(14, "time_correlate",
            (Arg("utc_ms", ANY, help="ground UTC now, ms since 1970 (uint)", unit="ms"),),
            IN_ANY, "Correlate node time with ground UTC. The node answers with a time "
            "correlation message and measures its clock drift from successive correlations "
            "(SPEC §11.1). Completed carries the drift now in use, ppb.",
            immediate=True, result="drift_ppb"),
    Command(15, "status", (), IN_ANY,
            "Report the node's state; completed carries it.",
            result="[mode, boot_count, reset_cause, uptime_ms, dict_hash, event_seq, "
                   "fw_version, node_id]"),
    Command(16, "event_log_downlink",
            (Arg("from_seq", U32, help="oldest event sequence number wanted"),), IN_ANY,
            "Downlink the persistent event log from a sequence number, as bulk type 1.",
            immediate=True),
    Command(17, "clear_counters", (), IN_ANY, "Zero the link and command counters."),
    Command(18, "reboot", (), IN_ANY,
            "Reboot the node. Reset cause COMMANDED is reported at the next boot.",
            hazardous=True),
    Command(19, "maintenance", (), IN_SAFE,
            "Leave the protocol and hand the USB serial back to the MicroPython REPL so "
            "mpremote can reach the board. Only in SAFE.", hazardous=True),
    Command(20, "dict_downlink", (), IN_ANY,
            "Downlink the node's compact dictionary, as bulk type 2.", immediate=True),
    Command(21, "fault_inject",
            (Arg("fault", U8, 0, 5, help="fault to inject", enum=FAULTS),
             Arg("target", U8, 0, 15, help="sensor, load channel or task, per fault"),
             Arg("value", F32, -1000.0, 1000.0, help="stuck value, or drain current in A")),
            IN_ANY, "Test only: inject a fault. CLEAR removes all injected faults; HANG_TASK "
            "stops a task so the watchdog resets the node.", test_only=True),
    Command(22, "auth_policy", (Arg("enforce", BOOL, help="true: plain commands rejected"),),
            IN_ANY, "Whether a node with keys rejects unauthenticated commands (SPEC §10.6). "
            "Taken only authenticated; persisted.", hazardous=True),
    Command(23, "arm",
            (Arg("command", U8, 1, 255, help="the hazardous command to allow next"),
             Arg("arguments", ANY, help="the CBOR encoding of its argument array (bytes)")),
            IN_ANY, "Allow the hazardous command with exactly these arguments as the next "
            "command, within arm_timeout_ms (SPEC §10.8). The ground sends it by itself."),
    Command(24, "key_rotate",
            (Arg("operator", U8, help="operator whose key moves"),
             Arg("generation", U8, 1, 254, help="the new generation, above the current one")),
            IN_ANY, "Move an operator to a new key generation, derived on the node from the "
            "operator's master (SPEC §10.7); the old one works until the new one is used.",
            hazardous=True),
    Command(25, "key_revoke",
            (Arg("operator", U8, help="operator whose key is refused"),
             Arg("generation", U8, help="refuse generations up to this one; 255: all, for good")),
            IN_ANY, "Refuse an operator's key generations from now on, persisted (SPEC §10.7).",
            hazardous=True),
    Command(27, "tt_list", (), IN_ANY,
            "Downlink the time-tagged command queue, as bulk type 4 (SPEC §11.4).",
            immediate=True),
    Command(28, "tt_delete", (Arg("entry", U8, 0, 63, help="queue entry (tt_list)"),), IN_ANY,
            "Delete one queued time-tagged command; it fails NOT_RUN (SPEC §11.4).",
            immediate=True),
    Command(29, "tt_clear", (), IN_ANY,
            "Delete every queued time-tagged command; each fails NOT_RUN (SPEC §11.4).",
            result="count", immediate=True),
    Command(30, "tt_pause", (Arg("paused", BOOL, help="true: hold the queue"),), IN_ANY,
            "Hold (true) or release (false) the time-tagged queue. Entries that come due while "
            "it is held run when it is released, under the late rule (SPEC §11.3).",
            immediate=True),
    # Stored sequences (SPEC §12)
    Command(32, "seq_upload_begin",
            (Arg("slot", U8, 0, SEQ_SLOTS - 1, help="sequence slot"),
             Arg("size", U16, 1, SEQ_MAX_IMAGE, "B", "bytes of the sequence image"),
             Arg("digest", ANY, help="SHA-256 of the whole image (bstr, 32 bytes)")),
            IN_ANY, "Begin (or resume) uploading a sequence image into a slot. The same slot, "
            "size and digest as the unfinished upload keep the bytes received; anything else "
            "starts afresh. Completed carries the bytes held: resend from there.",
            result="bytes held", immediate=True),
    Command(33, "seq_upload_part",
            (Arg("slot", U8, 0, SEQ_SLOTS - 1, help="sequence slot"),
             Arg("offset", U16, 0, SEQ_MAX_IMAGE - 1, "B", "offset of data in the image"),
             Arg("data", ANY, help="image bytes (bstr, 1 to 128 bytes)")),
            IN_ANY, "Upload a piece of the image. It must start at or before the bytes held "
            "(else rejected UPLOAD_STATE). Completed carries the bytes held.",
            result="bytes held", immediate=True),
    Command(34, "seq_upload_commit",
            (Arg("slot", U8, 0, SEQ_SLOTS - 1, help="sequence slot"),),
            IN_ANY, "Check the uploaded image (size, SHA-256, dictionary hash, every step "
            "against the dictionary) and store it in the slot atomically, replacing the old "
            "sequence. Completed carries the image hash (first 4 bytes of its SHA-256).",
            result="hash", immediate=True),
    Command(35, "seq_start", (Arg("slot", U8, 0, SEQ_SLOTS - 1, help="sequence slot"),),
            IN_ANY, "Run the sequence stored in a slot from its first step."),
    Command(36, "seq_stop", (Arg("slot", U8, 0, SEQ_SLOTS - 1, help="sequence slot"),),
            IN_ANY, "Stop a running sequence (state STOPPED); nothing when it is not running."),
    Command(37, "seq_trigger",
            (Arg("slot", U8, 0, SEQ_SLOTS - 1, help="sequence slot"),
             Arg("trigger", U8, 0, 4, help="onboard trigger", enum=SEQ_TRIGGERS),
             Arg("level", F32, 0.0, 100.0, "%", "battery charge for BATTERY_BELOW, else 0")),
            IN_ANY, "Set the onboard trigger that starts a slot's sequence (NONE: none). "
            "Persisted with the slot."),
    Command(38, "seq_list", (), IN_ANY,
            "List the slots; completed carries them.",
            result="[[state, step, hash, steps, name, trigger, level], ...] by slot"),
    Command(39, "seq_delete", (Arg("slot", U8, 0, SEQ_SLOTS - 1, help="sequence slot"),),
            IN_ANY, "Empty a slot: its sequence and its trigger."),
)

# --- Telemetry channels -------------------------------------------------------------------

_LINK = "link counter, since boot or clear_counters"

CHANNELS = (
    Channel(1, "mode", U8, "", "node mode", enum=MODES),
    Channel(2, "boot_count", U16, "", "boots since the flash was first written"),
    Channel(3, "dict_hash", U32, "", "dictionary hash the node was built with"),
    Channel(4, "uptime_s", U32, "s", "time since boot"),
    Channel(5, "reset_cause", U8, "", "cause of the last reset", enum=RESET_CAUSES),
    Channel(6, "heap_free", U32, "B", "MicroPython heap free", yellow=(24000, None),
            red=(12000, None)),
    Channel(7, "sun_elevation", F32, "deg", "sun elevation at the module site"),
    Channel(8, "lunar_day", BOOL, "", "true while the sun is up"),
    Channel(9, "solar_current", F32, "A", "solar array output current"),
    Channel(10, "dust_factor", F32, "", "array output lost to dust (1 is clean)",
            yellow=(0.7, None), red=(0.5, None)),
    Channel(11, "battery_soc", F32, "%", "battery state of charge",
            yellow=(30.0, None), red=(15.0, None)),
    Channel(12, "battery_voltage", F32, "V", "battery terminal voltage",
            yellow=(25.6, 33.4), red=(24.0, 33.8)),
    Channel(13, "battery_current", F32, "A", "battery current, positive when charging"),
    Channel(14, "battery_temp", F32, "degC", "battery temperature",
            yellow=(0.0, 40.0), red=(-10.0, 50.0)),
    Channel(15, "bus_current", F32, "A", "total load current on the power bus",
            yellow=(None, 10.0), red=(None, 14.0)),
    Channel(16, "electronics_temp", F32, "degC", "electronics box temperature",
            yellow=(-20.0, 50.0), red=(-30.0, 60.0)),
    Channel(17, "surface_temp", F32, "degC", "lunar surface temperature at the site"),
    Channel(18, "radiation", F32, "uGy/h", "radiation dose rate",
            yellow=(None, 100.0), red=(None, 1000.0)),
    Channel(19, "loads_on", U16, "", "bit mask of load channels switched on"),
    Channel(20, "loads_tripped", U16, "", "bit mask of load channels tripped by over-current",
            yellow=(None, 0)),
    Channel(21, "heaters_on", U8, "", "bit mask of heaters drawing power"),
    Channel(22, "mcu_temp", F32, "degC", "RP2040 die temperature (ADC 4); modelled in sim"),
    Channel(23, "frames_in", U32, "", "valid frames received; " + _LINK),
    Channel(24, "frames_out", U32, "", "frames sent; " + _LINK),
    Channel(25, "crc_errors", U32, "", "frames dropped for a bad CRC; " + _LINK),
    Channel(26, "discarded_bytes", U32, "", "bytes outside any valid frame; " + _LINK),
    Channel(27, "cmds_accepted", U32, "", "commands accepted; " + _LINK),
    Channel(28, "cmds_rejected", U32, "", "commands rejected; " + _LINK),
    Channel(29, "events_suppressed", U32, "", "events not sent because of throttling"),
    Channel(30, "tx_dropped", U32, "", "frames dropped because the link could not take them"),
    Channel(31, "event_seq", U32, "", "sequence number of the newest event"),
    Channel(32, "frame_errors", U32, "", "frames dropped as oversize or truncated; " + _LINK),
    Channel(33, "auth_state", U8, "", "who may command the node (SPEC §10.6)",
            enum=AUTH_STATES),
    Channel(34, "auth_forged", U32, "",
            "authenticated commands refused as forged (SPEC §10.3); " + _LINK),
    Channel(35, "auth_replayed", U32, "",
            "authenticated commands refused as replays (SPEC §10.3); " + _LINK),
    Channel(36, "armed_command", U8, "",
            "the hazardous command armed to run next, 0 when none (SPEC §10.8)"),
    Channel(50, "clock_correlated", BOOL, "", "node time is correlated with UTC (SPEC §11.1)"),
    Channel(51, "clock_age_s", U32, "s", "node time since the last time correlation"),
    Channel(52, "clock_drift_ppm", F32, "ppm",
            "measured node clock rate error, positive when the node clock runs fast"),
    Channel(53, "tt_queued", U8, "", "time-tagged commands waiting in the queue"),
    Channel(54, "tt_paused", BOOL, "", "the time-tagged queue is held (tt_pause)"),
    Channel(55, "tt_executed", U32, "", "time-tagged commands run since boot"),
    # Stored sequences (SPEC §12.6)
    Channel(56, "seq_states", U16, "", "state of each sequence slot, 4 bits a slot (slot n in "
            "bits 4n..4n+3): 0 EMPTY 1 IDLE 2 RUNNING 3 DONE 4 FAILED 5 STOPPED"),
    Channel(57, "seq_steps", U32, "", "step index of each sequence slot, 8 bits a slot (slot n "
            "in bits 8n..8n+7): the step running, or where the last run ended"),
    Channel(58, "seq_hash_0", U32, "", "hash of the sequence in slot 0 (0: empty)"),
    Channel(59, "seq_hash_1", U32, "", "hash of the sequence in slot 1 (0: empty)"),
    Channel(60, "seq_hash_2", U32, "", "hash of the sequence in slot 2 (0: empty)"),
    Channel(61, "seq_hash_3", U32, "", "hash of the sequence in slot 3 (0: empty)"),
    Channel(62, "seq_upload_held", U32, "B",
            "bytes held of the unfinished sequence upload (0: none)"),
    Channel(63, "node_id", U32, "", "this node's identity (SPEC §5.3): the node_id "
            "parameter, or when it is 0 the board's (a Pico: CRC-32 of machine.unique_id())"),
)
# Per-load currents: channels 40..49, red high limit at the channel's trip current.
CHANNELS += tuple(
    Channel(40 + i, "current_" + name, F32, "A", name + " load current",
            yellow=(None, round(trip * 0.8, 2)), red=(None, trip))
    for i, (name, _nominal, trip, _essential) in enumerate(LOADS)
)

# --- Housekeeping packets ------------------------------------------------------------------

_HEADER = ("mode", "boot_count", "dict_hash", "node_id")
PACKETS = (
    Packet(1, "power", _HEADER + (
        "uptime_s", "reset_cause", "sun_elevation", "lunar_day", "solar_current",
        "battery_soc", "battery_voltage", "battery_current", "battery_temp", "bus_current",
        "electronics_temp", "loads_on", "loads_tripped", "heaters_on"), 1.0,
        "power and thermal essentials"),
    Packet(2, "environment", _HEADER + (
        "surface_temp", "radiation", "dust_factor", "mcu_temp", "event_seq"), 0.2,
        "environment and station site"),
    Packet(3, "link", _HEADER + (
        "uptime_s", "heap_free", "frames_in", "frames_out", "crc_errors", "discarded_bytes",
        "frame_errors", "cmds_accepted", "cmds_rejected", "events_suppressed", "tx_dropped"),
        0.2, "link and software health"),
    Packet(4, "loads", _HEADER + tuple("current_" + load[0] for load in LOADS), 0.5,
           "per-channel load currents"),
    Packet(5, "thermal", _HEADER + (
        "battery_temp", "electronics_temp", "surface_temp", "heaters_on", "mcu_temp"), 0.5,
        "temperatures and heaters: the thermal control loop"),
    Packet(6, "battery", _HEADER + (
        "battery_soc", "battery_voltage", "battery_current", "battery_temp", "bus_current"),
        0.5, "battery state of charge, voltage, current and temperature; bus load"),
    Packet(7, "solar", _HEADER + (
        "sun_elevation", "lunar_day", "solar_current", "dust_factor"), 0.2,
        "sun and solar array"),
    Packet(8, "load_status", _HEADER + ("loads_on", "loads_tripped", "bus_current"), 0.5,
           "load switch states and over-current trips"),
    Packet(9, "commanding", _HEADER + (
        "cmds_accepted", "cmds_rejected", "event_seq", "events_suppressed", "auth_state",
        "auth_forged", "auth_replayed", "armed_command"), 0.2,
        "command and event counters"),
    Packet(10, "time", _HEADER + (
        "uptime_s", "event_seq", "reset_cause", "clock_correlated", "clock_age_s",
        "clock_drift_ppm", "tt_queued", "tt_paused", "tt_executed"), 0.1,
        "uptime, newest event, last reset cause, time correlation, time-tagged queue"),
    Packet(12, "sequence", _HEADER + (
        "seq_states", "seq_steps", "seq_hash_0", "seq_hash_1", "seq_hash_2", "seq_hash_3",
        "seq_upload_held"), 0.5, "stored sequence slots and the upload in progress"),
)

# --- Events -------------------------------------------------------------------------------

EVENTS = (
    Event(1, "boot", INFO, "boot {boot_count}, reset cause {reset_cause}",
          ("boot_count", "reset_cause")),
    Event(2, "mode_changed", INFO, "mode {old} -> {new}", ("old", "new")),
    Event(3, "limit_yellow", WARNING, "channel {channel} yellow: {value}", ("channel", "value")),
    Event(4, "limit_red", ERROR, "channel {channel} red: {value}", ("channel", "value")),
    Event(5, "limit_nominal", INFO, "channel {channel} back in limits: {value}",
          ("channel", "value")),
    Event(6, "loads_shed", WARNING, "loads shed (mask {mask}) at charge {soc} %",
          ("mask", "soc")),
    Event(7, "load_tripped", ERROR, "load {channel} tripped at {current} A",
          ("channel", "current")),
    Event(8, "heater_switched", INFO, "heater {heater} {on} at {temp} degC",
          ("heater", "on", "temp")),
    Event(9, "safe_mode", ERROR, "safe mode forced: {reason}", ("reason",)),  # SAFE_REASONS
    Event(10, "params_defaulted", WARNING, "parameters defaulted: {reason}", ("reason",)),
    # reason: PARAMS_DEFAULT_REASONS
    Event(11, "params_saved", INFO, "parameters saved ({count})", ("count",)),
    Event(12, "param_changed", INFO, "parameter {param} changed", ("param",)),
    Event(13, "task_crashed", FATAL, "task {task} crashed: {error}", ("task", "error")),
    Event(14, "watchdog_reset", ERROR, "reset by watchdog", ()),
    Event(15, "time_correlated", INFO, "time correlated: node {node_ms} ms = UTC {utc_ms} ms",
          ("node_ms", "utc_ms")),
    Event(16, "spe_start", WARNING, "solar particle event: {rate} uGy/h", ("rate",)),
    Event(17, "spe_end", INFO, "solar particle event over", ()),
    Event(18, "fault_injected", WARNING, "fault {fault} injected on {target}",
          ("fault", "target")),
    Event(19, "events_suppressed", WARNING, "event {event} suppressed {count} times",
          ("event", "count")),
    Event(20, "sunrise", INFO, "sunrise", ()),
    Event(21, "sunset", INFO, "sunset", ()),
    Event(22, "cmd_rejected", DEBUG, "command {command} seq {seq} rejected: {code}",
          ("command", "seq", "code")),
    Event(23, "cmd_failed", WARNING, "command {command} seq {seq} failed: {code}",
          ("command", "seq", "code")),
    Event(24, "maintenance", WARNING, "entering maintenance: REPL on the link", ()),
    Event(25, "sensor_fault", ERROR, "sensor {sensor} fault detected", ("sensor",)),
    Event(26, "counters_cleared", INFO, "counters cleared", ()),
    Event(27, "heater_on_cold", WARNING, "battery cold ({temp} degC): heater forced on",
          ("temp",)),
    Event(28, "params_loaded", INFO, "parameters loaded ({count})", ("count",)),
    Event(29, "param_reset", INFO, "parameters reset to defaults", ()),
    Event(30, "reboot", WARNING, "reboot commanded", ()),
    Event(31, "auth_refused", WARNING,
          "commands refused: {forged} forged, {replayed} replayed in all (SPEC §10.3)",
          ("forged", "replayed")),
    Event(32, "auth_open", WARNING, "commanding is open to anyone on the link: {state}",
          ("state",)),  # state: AUTH_STATES
    Event(33, "armed", INFO, "command {command} armed", ("command",)),
    Event(34, "disarmed", INFO, "command {command} disarmed by command {by}",
          ("command", "by")),
    Event(35, "arm_expired", INFO, "command {command} not sent in time: disarmed",
          ("command",)),
    Event(36, "key_changed", WARNING,
          "operator {operator} key: {change} generation {generation}",
          ("operator", "change", "generation")),  # change: KEY_CHANGES
    Event(37, "tt_executed", INFO, "time-tagged command {command} seq {seq} ran: {code}",
          ("seq", "command", "code")),
    Event(38, "tt_unknown", ERROR,
          "time-tagged command {command} seq {seq} was cut by a reset: outcome unknown",
          ("seq", "command")),
    Event(39, "tt_not_run", WARNING, "time-tagged command {command} seq {seq} not run: {why}",
          ("seq", "command", "why")),  # why: TT_NOT_RUN_REASONS
    Event(40, "tt_paused", INFO, "time-tagged queue held: {paused}", ("paused",)),
    # Stored sequences (SPEC §12.6)
    Event(43, "seq_started", INFO, "sequence slot {slot} started by {cause}, hash {hash}",
          ("slot", "cause", "hash")),  # cause: SEQ_CAUSES
    Event(44, "seq_step", DEBUG, "sequence slot {slot} step {step} done", ("slot", "step")),
    Event(45, "seq_step_failed", WARNING, "sequence slot {slot} step {step} failed: {code}",
          ("slot", "step", "code")),  # code: a reason code (§6)
    Event(46, "seq_ended", INFO, "sequence slot {slot} ended {state} at step {step}",
          ("slot", "state", "step")),  # state: SEQ_STATES
    Event(47, "seq_triggered", INFO, "sequence slot {slot} trigger {trigger} fired: {code}",
          ("slot", "trigger", "code")),  # trigger: SEQ_TRIGGERS; code: 0 started, else why not
    Event(48, "seq_stored", INFO, "sequence slot {slot} stored: hash {hash}, {steps} steps",
          ("slot", "hash", "steps")),
    Event(49, "seq_invalid", WARNING, "sequence for slot {slot} invalid at step {step}: "
          "{problem}", ("slot", "step", "problem")),  # problem: SEQ_PROBLEMS
    Event(50, "seq_interrupted", WARNING, "sequence slot {slot} (hash {hash}) was running at "
          "a reset", ("slot", "hash")),
)

# --- Parameters ---------------------------------------------------------------------------

PARAMS = (
    Param(1, "time_factor", F32, 60.0, 1.0, 1000000.0, "x",
          "plant-model time acceleration: model seconds per real second"),
    Param(2, "battery_setpoint", F32, 5.0, -40.0, 40.0, "degC",
          "battery heater thermostat setpoint"),
    Param(3, "electronics_setpoint", F32, -10.0, -40.0, 40.0, "degC",
          "electronics heater thermostat setpoint"),
    Param(4, "heater_hysteresis", F32, 2.0, 0.5, 10.0, "degC", "thermostat hysteresis"),
    Param(5, "fdir_enabled", BOOL, True, None, None, "", "fault protection responses on"),
    Param(6, "shed_soc_pct", F32, 15.0, 5.0, 50.0, "%",
          "battery charge below which non-essential loads are shed and SAFE is forced"),
    Param(7, "science_min_soc_pct", F32, 40.0, 10.0, 90.0, "%",
          "battery charge needed to enter SCIENCE"),
    Param(8, "battery_cold_c", F32, -5.0, -40.0, 20.0, "degC",
          "battery temperature below which its heater is forced on"),
    Param(9, "watchdog_timeout_ms", U16, 5000, 1000, 8000, "ms",
          "watchdog timeout (the RP2040 allows at most 8388 ms)"),
    Param(10, "event_rate_limit", U8, 5, 1, 100, "per 10 s",
          "live events of one id allowed per 10 s before throttling"),
    Param(11, "plant_seed", U32, 1, 0, 0xFFFFFFFF, "",
          "plant-model random seed (solar particle events, sensor noise)"),
    Param(12, "dust_rate", F32, 0.02, 0.0, 1.0, "1/lunar day",
          "fraction of array output lost to dust per lunar day"),
    Param(13, "hk_enabled_mask", U16, sum(1 << (p - 1) for p in PACKET_NAMES), 0,
          (1 << max(PACKET_NAMES)) - 1, "",
          "housekeeping packets enabled at boot, bit (packet id - 1)"),
    Param(14, "test_value", I32, 0, -1000, 1000, "", "scratch parameter for tests",
          persisted=True),
    Param(15, "volatile_value", I32, 0, -1000, 1000, "",
          "scratch parameter that is not persisted", persisted=False),
    Param(16, "arm_timeout_ms", U16, 10000, 1000, 60000, "ms",
          "how long an arm command allows its hazardous command (node time, SPEC §10.8)"),
    Param(18, "tt_tolerance_ms", U32, 2000, 0, 600000, "ms",
          "a time-tagged command tagged at most this far in the past is accepted and runs at "
          "once; further in the past it is rejected TIME_PAST (SPEC §11.2)"),
    Param(19, "tt_late_max_s", U32, 300, 0, 2592000, "s",
          "a queued command found overdue (node off, clock not correlated, queue held) runs "
          "if at most this late, else fails NOT_RUN (SPEC §11.3)"),
    Param(24, "node_id", U32, 0, 0, 0xFFFFFFFF, "",
          "this node's identity in its telemetry (node_id channel); 0: the board's own "
          "(a Pico: CRC-32 of machine.unique_id(); a simulated node: its port's node_id, else "
          "one kept in its state directory)"),
)
