"""`python -m beamline_serving --model_base_path=... --model_name=...`: the server on its own.

TF Serving's flags with their meanings (beamline_serving.core.flags), as `tensorflow_model_server`
takes them, for an image or host without the Beamline framework's CLI. `beamline serve` is the
same server behind the framework's command, which adds the run root and push recovery.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from beamline_serving.core.flags import standalone_options
from beamline_serving.errors import ConfigError

USAGE_EXIT_CODE = 2  # as argparse exits on a malformed command line


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        options = standalone_options(args)
        from beamline_serving.server import run  # TensorFlow loads here, after the flags

        run(options)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return USAGE_EXIT_CODE
    return 0


if __name__ == "__main__":
    sys.exit(main())
