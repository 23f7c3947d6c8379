"""A Workspace opens its run root's store once, on first use, and never creates one to read."""

from __future__ import annotations

import pytest

from beamline.errors import MetadataUnreachable
from beamline.metadata import connection
from beamline.metadata.workspace import Workspace


@pytest.fixture
def opens(monkeypatch) -> list[object]:
    """Every MLMD store opened, through the one function that opens them."""
    opened: list[object] = []
    real = connection.open_store

    def counting(config):
        opened.append(config)
        return real(config)

    monkeypatch.setattr(connection, "open_store", counting)
    return opened


def test_the_store_is_opened_on_first_use_and_only_once(tmp_path, opens):
    with Workspace(tmp_path, existing=False) as workspace:
        assert not workspace.opened and opens == []
        workspace.store.get_contexts()
        workspace.store.get_executions()
        assert workspace.store is workspace.store
    assert len(opens) == 1
    assert not workspace.opened  # released at the end of the `with`
    with Workspace(tmp_path) as reader:
        assert reader.store.get_contexts() == []
    assert len(opens) == 2


def test_a_reading_workspace_never_creates_a_store(tmp_path, opens):
    workspace = Workspace(tmp_path)
    assert workspace.layout.metadata_path == tmp_path / "metadata.sqlite"
    with pytest.raises(MetadataUnreachable, match="metadata.sqlite"):
        workspace.store.get_contexts()
    assert opens == [] and not (tmp_path / "metadata.sqlite").exists()
