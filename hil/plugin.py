"""pytest11 entry point for the HIL rig (filled in by the hil work)."""
