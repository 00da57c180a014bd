"""The offline openml-python fixture: a server on 127.0.0.1 that refuses every
connection, and a cache root in a temporary folder."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import openml
import pytest

from tasks import DataSources
from tasks.openml_source import server_reachable


@dataclass
class OfflineOpenML:
    """An openml-python configuration whose server refuses every connection."""

    root: Path
    base_url: str

    def dataset_folder(self, openml_id: int) -> Path:
        cache = Path(openml.config.get_cache_directory())
        assert cache.is_relative_to(self.root)
        return cache / "datasets" / str(openml_id)

    def sources(self, cache_dir: Path) -> DataSources:
        return DataSources(cache_dir=cache_dir, mirror=None, openml_cache=self.root)


@pytest.fixture
def offline_openml(tmp_path: Path) -> Iterator[OfflineOpenML]:
    saved_server = openml.config.server
    saved_root = openml.config.get_config_as_dict()["cachedir"]
    # A TCP socket that is bound but not listening refuses connections, and
    # holding it keeps any other process from taking the port meanwhile.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as closed_port:
        closed_port.bind(("127.0.0.1", 0))
        port = closed_port.getsockname()[1]
        base_url = f"http://127.0.0.1:{port}"
        root = tmp_path / "openml"
        openml.config.server = f"{base_url}/api/v1/xml"
        openml.config.set_root_cache_directory(root)
        try:
            assert not server_reachable(timeout_s=1.0)
            yield OfflineOpenML(root=root, base_url=base_url)
        finally:
            openml.config.server = saved_server
            openml.config.set_root_cache_directory(saved_root)
