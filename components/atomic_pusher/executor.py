"""TFX's Pusher, made atomic: a version becomes visible to model servers only once complete,
and, under Beamline's runner, only once recorded.

Stock TFX copies the SavedModel straight into `<base>/<version>/` (saved_model.pb last), so a
push killed half-way leaves a partial version a server may try to load, and a version that
exists on disk but nowhere in MLMD. Here the model is copied to `<base>/.incoming-<version>-<pid>/`
(servers, like TF Serving, only look at numeric directory names).

- Under Beamline's runner ($BEAMLINE_DEFERRED_PUSH set) this executor stops there: the
  PushedModel names `<base>/<version>/` as its destination, TFX records the push, and the runner
  then renames the staged copy into place (beamline.runner.push). Recovery finishes a recorded
  push whose rename did not happen and removes a staged copy that no push recorded.
- Elsewhere (Airflow, Kubeflow) the copy is renamed into place here, before TFX records it:
  a kill between the two leaves a complete version without lineage (`beamline runs` reports it).

Remote destinations (gs://, s3://) have no atomic rename: they keep TFX's own behaviour.
"""

from __future__ import annotations

import os
import time

from absl import logging
from tfx.components.pusher import executor as tfx_pusher
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import io_utils, proto_utils

from beamline.faults import fault_point
from beamline.settings import DEFERRED_PUSH_ENV, is_uri
from beamline.settings import PUSH_INCOMING_PREFIX as INCOMING_PREFIX


def next_version(base_directory: str, now: float | None = None) -> str:
    """A Unix-time version newer than every version already in `base_directory`."""
    version = int(time.time() if now is None else now)
    existing = [int(n) for n in os.listdir(base_directory) if n.isdigit()] if os.path.isdir(
        base_directory
    ) else []
    return str(max([version, *(v + 1 for v in existing)]))


class Executor(tfx_pusher.Executor):
    """Pusher executor whose filesystem push is copy-then-rename."""

    def Do(self, input_dict, output_dict, exec_properties) -> None:  # noqa: N802 - TFX's name
        destination = pusher_pb2.PushDestination()
        proto_utils.json_to_proto(
            exec_properties[standard_component_specs.PUSH_DESTINATION_KEY], destination
        )
        base = destination.filesystem.base_directory
        if destination.WhichOneof("destination") != "filesystem" or is_uri(base):
            return super().Do(input_dict, output_dict, exec_properties)
        self._log_startup(input_dict, output_dict, exec_properties)
        model_push = artifact_utils.get_single_instance(
            output_dict[standard_component_specs.PUSHED_MODEL_KEY]
        )
        if not self.CheckBlessing(input_dict):
            self._MarkNotPushed(model_push)
            return None
        model_path = self.GetModelPath(input_dict)
        os.makedirs(base, exist_ok=True)
        version = next_version(base)
        incoming = os.path.join(base, f"{INCOMING_PREFIX}{version}-{os.getpid()}")
        serving_path = os.path.join(base, version)
        io_utils.copy_dir(model_path, incoming)
        fault_point("push:copied")
        if os.environ.get(DEFERRED_PUSH_ENV):
            # The archive copy TFX keeps with the PushedModel artifact.
            io_utils.copy_dir(model_path, model_push.uri)
            self._MarkPushed(model_push, pushed_destination=serving_path, pushed_version=version)
            logging.info("Model version %s staged in %s; visible once recorded.", version, incoming)
            fault_point("push:staged")
            return None
        os.rename(incoming, serving_path)  # atomic on one filesystem; fails if it exists
        logging.info("Model version %s written to serving path %s.", version, serving_path)
        fault_point("push:visible")
        # The archive copy TFX keeps with the PushedModel artifact.
        io_utils.copy_dir(model_path, model_push.uri)
        self._MarkPushed(model_push, pushed_destination=serving_path, pushed_version=version)
        return None
