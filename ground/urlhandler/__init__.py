"""pyserial URL handlers of the ground (``serial.protocol_handler_packages``): ``mqtt://``."""
