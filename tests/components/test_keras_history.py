"""The Trainer's per-epoch record: training split into epochs of the same total steps trains the
same model, and every epoch's loss and metrics land in history.json as they finish."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow as tf

from beamline.lineage.epochs import read_history
from beamline.runner.local import autograph_skips_tf_keras
from beamline_components.common import keras_tabular as kt

keras = kt.keras
# As in a run: without it the first fit transpiles tf_keras itself (two minutes on a busy
# machine instead of seconds).
autograph_skips_tf_keras()


@pytest.mark.parametrize(
    ("total", "split"),
    [(200, (10, 20)), (30, (10, 3)), (100, (10, 10)), (7, (7, 1)), (12, (6, 2)), (13, (1, 13)),
     (1, (1, 1)), (None, (1, None)), (0, (1, None))],
)
def test_epochs_divide_the_steps_exactly(total, split):
    epochs, steps = kt.epoch_split(total)
    assert (epochs, steps) == split
    if total:
        assert epochs * steps == total and epochs <= kt.MAX_EPOCHS


def _datasets():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(96, 3)).astype("float32")
    y = (x.sum(axis=1) > 0).astype("float32")
    train = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(96, seed=1).batch(8).repeat()
    evaluation = tf.data.Dataset.from_tensor_slices((x[:32], y[:32])).batch(8).repeat()
    return train, evaluation


def _fit(epochs: int, steps: int, callbacks=()):
    keras.utils.set_random_seed(42)
    train, evaluation = _datasets()
    model = keras.Sequential([keras.layers.Dense(4, activation="relu"), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="mse", metrics=["mae"])
    model.fit(train, epochs=epochs, steps_per_epoch=steps, validation_data=evaluation,
              validation_steps=2, callbacks=list(callbacks), verbose=0)
    return model.get_weights()


def test_ten_epochs_of_a_tenth_train_the_model_one_epoch_does(tmp_path):
    path = tmp_path / kt.HISTORY_FILE
    one = _fit(1, 40)
    epochs, steps = kt.epoch_split(40)
    split = _fit(epochs, steps, [kt.EpochHistory(str(path), steps, 2)])
    for a, b in zip(one, split, strict=True):
        np.testing.assert_array_equal(a, b)

    written = json.loads(path.read_text())
    assert written["epochs"] == 10 and written["steps_per_epoch"] == 4
    assert written["validation_steps"] == 2
    assert set(written["metrics"]) == {"loss", "mae", "val_loss", "val_mae"}
    assert all(len(values) == 10 for values in written["metrics"].values())
    # Training on a learnable target: the last epoch's loss is below the first's.
    assert written["metrics"]["loss"][-1] < written["metrics"]["loss"][0]
    assert not list(tmp_path.glob("*.tmp"))

    # The framework's reader, which imports no TensorFlow, reads what the writer wrote.
    history = read_history(str(tmp_path))
    assert history.epochs == 10 and history.steps_per_epoch == 4
    assert history.final("val_loss") == written["metrics"]["val_loss"][-1]


def test_a_non_finite_loss_is_written_as_null(tmp_path):
    path = tmp_path / kt.HISTORY_FILE
    callback = kt.EpochHistory(str(path), 5, 1)
    callback.on_epoch_end(0, {"loss": float("nan"), "val_loss": 1.5})
    callback.on_epoch_end(1, {"loss": 0.5, "val_loss": float("inf")})
    written = json.loads(path.read_text())
    assert written["metrics"] == {"loss": [None, 0.5], "val_loss": [1.5, None]}
    assert written["epochs"] == 2
