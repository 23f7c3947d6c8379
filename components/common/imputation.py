"""Missing-value handling shared by the Transform module files.

Raw features reach `preprocessing_fn` as SparseTensor (VarLenFeature), RaggedTensor (TFT's
ragged inputs) or dense Tensor, with at most one value per row; a missing CSV cell is an absent
feature, i.e. a row with no value. These helpers turn any of the three into a dense [batch]
tensor whose gaps hold a default (a constant, or a statistic computed by tf.Transform over the
present values only, so the gaps do not bias it).
"""

from __future__ import annotations

import tensorflow as tf
import tensorflow_transform as tft

MISSING_CATEGORY = "__missing__"


def to_dense(x, default):
    """A dense [batch] tensor from a sparse/ragged/dense [batch, <=1] feature; gaps = default."""
    if isinstance(x, tf.sparse.SparseTensor):
        x = tf.sparse.to_dense(
            tf.SparseTensor(x.indices, x.values, [x.dense_shape[0], 1]), default_value=default
        )
    elif isinstance(x, tf.RaggedTensor):
        x = x.to_tensor(default_value=default, shape=[None, 1])
    return tf.reshape(x, [-1])


def present_values(x):
    """The values that are there, flat (a dense tensor has no gaps)."""
    if isinstance(x, tf.sparse.SparseTensor):
        return x.values
    if isinstance(x, tf.RaggedTensor):
        return x.flat_values
    return tf.reshape(x, [-1])


def as_float(x):
    """The same feature (same kind of tensor) with float32 values."""
    if isinstance(x, tf.sparse.SparseTensor):
        return tf.SparseTensor(x.indices, tf.cast(x.values, tf.float32), x.dense_shape)
    return tf.cast(x, tf.float32)  # dense and ragged tensors cast as a whole


def impute_numeric(x):
    """Float [batch] values, gaps filled with the mean of the present (training) values."""
    x = as_float(x)
    return to_dense(x, tft.mean(present_values(x)))


def fill_categorical(x, missing: str = MISSING_CATEGORY):
    """String [batch] values, gaps as the `missing` category (its own vocabulary entry)."""
    return to_dense(x, missing)


def as_strings(x):
    """The same feature (same kind of tensor) with its values as strings: integer codes and
    booleans become vocabulary entries like text does."""
    if x.dtype == tf.string:
        return x
    if isinstance(x, tf.sparse.SparseTensor):
        return tf.SparseTensor(x.indices, tf.strings.as_string(x.values), x.dense_shape)
    if isinstance(x, tf.RaggedTensor):
        return tf.ragged.map_flat_values(tf.strings.as_string, x)
    return tf.strings.as_string(x)
