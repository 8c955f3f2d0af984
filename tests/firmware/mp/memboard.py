"""An in-memory board for running the node inside one MicroPython process (tests).

Input is what the test puts in ``rx`` (read_into drains it); output frames collect in ``tx``
(a preallocated bytearray, so writing allocates nothing). Time is a counter the test
advances. The state directory is given by the test.
"""



class MemBoard:
    name = "mem"
    fs_sync = False

    NODE_ID = 0x4D454D31  # "MEM1": the board's own id (node_id channel, param 0)

    def __init__(self, fs_root, tx_size=65536, cause=0, config=None):
        self.fs_root = fs_root
        self.config = config or {}
        self.rx = bytearray()
        self.rx_stream = None
        self.rx_chunks = True
        self.tx = bytearray(tx_size)
        self.tx_len = 0
        self.tx_room = -1  # bytes the "reader" takes before it stalls (-1: no limit)
        self.writes = 0  # write() calls
        self.now = 0
        self.cause = cause
        self.led = 0
        self.load_pins = 0
        self.feeds = 0
        self.wdt_timeout = None
        self.resets = []
        self.errors = []

    def link_open(self):
        pass

    def link_close(self):
        pass

    def read_into(self, buf):
        n = min(len(buf), len(self.rx))
        buf[0:n] = self.rx[0:n]
        self.rx = self.rx[n:]
        return n

    def poll_ms(self, ms):
        return bool(self.rx)

    def write(self, buf, off, n):
        # What a slow reader takes: up to tx_room bytes (then 0 until the test gives more).
        self.writes += 1
        pos = self.tx_len
        room = len(self.tx) - pos
        if self.tx_room >= 0 and self.tx_room < room:
            room = self.tx_room
        if n > room:
            n = room
        tx = self.tx
        for i in range(n):
            tx[pos + i] = buf[off + i]
        self.tx_len = pos + n
        if self.tx_room >= 0:
            self.tx_room -= n
        return n

    def tx_wait(self, ms):
        return self.tx_room != 0

    def take_tx(self):
        out = bytes(self.tx[0:self.tx_len])
        self.tx_len = 0
        return out

    def ticks_ms(self):
        return self.now

    def wdt_start(self, timeout_ms):
        self.wdt_timeout = timeout_ms

    def wdt_feed(self):
        self.feeds += 1

    def reset_cause(self):
        return self.cause

    def reset(self, cause):
        self.resets.append(cause)

    def enter_maintenance(self):
        self.resets.append(3)

    def set_led(self, mode):
        self.led = mode

    def led_tick(self, now_ms):
        pass

    def set_load_pin(self, ch, on):
        if on:
            self.load_pins |= 1 << ch
        else:
            self.load_pins &= ~(1 << ch)

    def mcu_temp_c(self):
        return None

    def node_id(self):
        return self.NODE_ID

    def log_exc(self, exc):
        self.errors.append(exc)

    def log(self, text):
        pass


