"""Container entrypoint: resolve secrets, then run a TFX step module as `python -m` would.

Compiled pipelines that declare secrets run `python -m beamline.deploy.entrypoint MODULE ARGS...`
instead of `python -m MODULE ARGS...` (MODULE is TFX's Kubeflow v2 executor or ExampleGen driver).
This puts the secrets listed in `BEAMLINE_SECRET_SOURCES` into the environment, masks their
values in this process's logs and replaces `${secret:NAME}` in ARGS, so secret values exist only
inside the running container.
"""

from __future__ import annotations

import os
import runpy
import sys

from beamline.deploy.secrets import SecretMissing, resolve_args


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        sys.exit("usage: python -m beamline.deploy.entrypoint MODULE [ARGS...]")
    module, *args = argv
    try:
        args = resolve_args(args, os.environ)
    except SecretMissing as exc:
        sys.exit(f"error: {exc}")
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
