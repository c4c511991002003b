"""``ferrogate.FileWrapper`` (wsgi.file_wrapper) used directly from Python."""

from __future__ import annotations

import io

import pytest


@pytest.fixture
def ferrogate():
    import ferrogate as module  # inside a fixture: an unbuilt extension fails these tests only

    return module


class Recorder(io.BytesIO):
    closed_count = 0

    def close(self):
        self.closed_count += 1
        super().close()


def test_file_wrapper_iterates_in_blocks_of_blksize(ferrogate):
    assert list(ferrogate.FileWrapper(io.BytesIO(b"abcdefghij"), 4)) == [b"abcd", b"efgh", b"ij"]


def test_file_wrapper_default_block_size_reads_everything(ferrogate):
    data = bytes(range(256)) * 100
    assert b"".join(ferrogate.FileWrapper(io.BytesIO(data))) == data


def test_file_wrapper_iterates_a_real_file(ferrogate, tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"x" * 10000)
    with open(path, "rb") as f:
        assert b"".join(ferrogate.FileWrapper(f, 3000)) == b"x" * 10000


def test_file_wrapper_close_closes_the_file_like_object(ferrogate):
    filelike = Recorder(b"data")
    wrapper = ferrogate.FileWrapper(filelike, 2)
    assert next(iter(wrapper)) == b"da"
    wrapper.close()
    assert filelike.closed_count == 1


def test_file_wrapper_is_exported(ferrogate):
    assert "FileWrapper" in ferrogate.__all__
    assert "make_server" in ferrogate.__all__ and "run" in ferrogate.__all__
