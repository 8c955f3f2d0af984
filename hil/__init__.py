"""Hardware-in-the-loop rig: a pytest plugin and a suite that run on a Pico or the simulated node."""
