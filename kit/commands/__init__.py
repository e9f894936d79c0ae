"""The `kit <command>` commands: argument parsing and printing on top of the library modules below them.

Each module holds one command's `main(argv) -> int`; no library module imports from here.
"""
