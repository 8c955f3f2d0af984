"""Hardware-in-the-loop rig: a pytest plugin and a suite, on a Pico or the simulated node."""
