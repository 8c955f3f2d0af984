"""The HIL suite: runs unchanged on a Pico or the simulated node (make hil [PORT=...])."""
