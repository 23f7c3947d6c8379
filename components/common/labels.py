"""The label as each task trains on it, from the raw label feature (rows without a label never
reach here: the ExampleGen leaves them out)."""

from __future__ import annotations

import tensorflow as tf
import tensorflow_transform as tft

from beamline_components.common.imputation import as_float, as_strings, to_dense


def class_index(label, vocabulary: str):
    """Multiclass: the label's index in a vocabulary of its values (most frequent first)."""
    return tft.compute_and_apply_vocabulary(to_dense(as_strings(label), ""),
                                            vocab_filename=vocabulary)


def positive_indicator(label, positive: str):
    """Binary: 1 where the label is the positive class, else 0 (fixed, so the meaning of a score
    never flips when a new span changes which class is more frequent)."""
    return tf.cast(tf.equal(to_dense(as_strings(label), ""), positive), tf.int64)


def quantity(label):
    """Regression: the label as a float."""
    return to_dense(as_float(label), 0.0)
