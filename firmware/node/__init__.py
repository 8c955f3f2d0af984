"""The node: link, dispatcher and services, plant and FDIR, on cooperative asyncio tasks.

node.app builds everything around a board (board/) and runs it; see docs/ARCHITECTURE.md.
"""
