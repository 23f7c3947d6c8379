"""AutoGraph leaves tf_keras's library code alone in a run (as TensorFlow leaves Keras 2's), and
still converts a module file's own functions."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

CHECK = textwrap.dedent(
    """
    import os
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    import tf_keras
    from tensorflow.python.autograph.core import config
    from tensorflow.python.autograph.impl import conversion

    from beamline.runner.local import autograph_skips_tf_keras

    def module_file_function(x):
        return x

    before = conversion.is_allowlisted(tf_keras.layers.Dense.call)
    autograph_skips_tf_keras()
    autograph_skips_tf_keras()  # once is enough: the rule is not added twice
    print(before, conversion.is_allowlisted(tf_keras.layers.Dense.call),
          conversion.is_allowlisted(tf_keras.Model.train_step),
          conversion.is_allowlisted(module_file_function),
          sum("tf_keras" in str(r) for r in config.CONVERSION_RULES))
    """
)


def test_a_run_does_not_transpile_tf_keras_but_still_converts_module_code():
    # A process of its own: the rule changes TensorFlow's process-wide AutoGraph settings.
    proc = subprocess.run(
        [sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["False", "True", "True", "False", "1"]
