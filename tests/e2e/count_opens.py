"""`beamline ARGS` with every MLMD store it opens counted: `python count_opens.py OUT ARGS...`.

Every store the framework opens goes through `beamline.metadata.connection.open_store` (a
Workspace, `open_existing`); this wraps it before the CLI is imported and appends one line per
open to OUT (pid and store), so a test can hold a command to one open. TFX's own launchers open
their connections elsewhere, while nodes run; those are not the command's.
"""

from __future__ import annotations

import os
import sys


def main() -> None:
    out, args = sys.argv[1], sys.argv[2:]
    from beamline.metadata import connection

    real = connection.open_store

    def counting(config):
        with open(out, "a") as opens:
            opens.write(f"{os.getpid()} {connection.target_of(config)}\n")
        return real(config)

    connection.open_store = counting
    from beamline.cli import main as cli

    cli(args)


if __name__ == "__main__":
    main()
