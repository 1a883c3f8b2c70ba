"""hymirec.io: the one atomic writer and the one safetensors reader."""

import numpy as np
import pytest
from safetensors.numpy import save_file

from hymirec.io import atomic_write, read_safetensors, replaced_dir, write_text_atomic


class MyError(ValueError):
    pass


def test_read_safetensors_gives_metadata_and_tensors(tmp_path):
    path = tmp_path / "x.safetensors"
    save_file({"a": np.arange(3, dtype=np.int64), "b": np.ones((2, 2), dtype=np.float32)}, str(path),
              metadata={"k": "v"})
    meta, tensors = read_safetensors(path, framework="np", error=MyError, what="a test file")
    assert meta == {"k": "v"}
    assert sorted(tensors) == ["a", "b"] and tensors["a"].tolist() == [0, 1, 2]
    _, only = read_safetensors(path, framework="np", error=MyError, what="a test file", keys=["b"])
    assert list(only) == ["b"]


def test_read_safetensors_turns_a_bad_file_into_the_callers_error(tmp_path):
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00not json")
    with pytest.raises(MyError, match=r"junk.safetensors: not a test file \(.+\)"):
        read_safetensors(junk, framework="np", error=MyError, what="a test file")
    good = tmp_path / "good.safetensors"
    save_file({"a": np.zeros(1, dtype=np.float32)}, str(good))
    with pytest.raises(MyError, match="good.safetensors: not a test file"):
        read_safetensors(good, framework="np", error=MyError, what="a test file", keys=["missing"])


def test_each_reader_keeps_its_error_type_and_message(tmp_path):
    from hymirec.codebook.errors import CodebookError
    from hymirec.codebook.io import read_codebook
    from hymirec.encoders.errors import BackboneError
    from hymirec.encoders.export import read_embeddings
    from hymirec.training.checkpoint import CheckpointError, read_checkpoint

    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a safetensors file at all")
    with pytest.raises(CodebookError, match="junk.safetensors: not a safetensors file"):
        read_codebook(junk)
    with pytest.raises(CheckpointError, match="junk.safetensors: not a readable safetensors checkpoint"):
        read_checkpoint(junk)
    with pytest.raises(BackboneError, match="junk.safetensors: not an item-embeddings export"):
        read_embeddings(junk)


def test_atomic_write_replaces_the_file_on_success(tmp_path):
    path = tmp_path / "f.txt"
    path.write_text("old")
    with atomic_write(path) as tmp:
        assert tmp.parent == tmp_path and tmp != path
        tmp.write_text("new")
        assert path.read_text() == "old"  # nothing visible before the block completes
    assert path.read_text() == "new"
    assert write_text_atomic(path, "newer") == path and path.read_text() == "newer"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.txt"]


def test_a_failure_mid_write_leaves_the_previous_file_intact(tmp_path, monkeypatch):
    path = tmp_path / "f.txt"
    path.write_text("previous")
    real_write_text = type(path).write_text

    def write_half_then_fail(self, text, *args, **kwargs):
        real_write_text(self, text[: len(text) // 2], *args, **kwargs)
        raise OSError("disk full")

    monkeypatch.setattr(type(path), "write_text", write_half_then_fail)
    with pytest.raises(OSError, match="disk full"):
        write_text_atomic(path, "a whole new content")
    monkeypatch.undo()
    assert path.read_text() == "previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.txt"]  # the half-written file is gone


def test_a_codebook_write_that_fails_leaves_the_previous_codebook(tmp_path, monkeypatch):
    from hymirec.codebook import io as codebook_io

    path = tmp_path / "codebook.safetensors"
    codebook_io.write_codebook(path, {"version": "old"}, {"c": np.zeros((2, 2), dtype=np.float32)})

    def fail(tensors, filename, metadata=None):
        with open(filename, "wb") as f:
            f.write(b"half a fi")
        raise OSError("killed mid-write")

    monkeypatch.setattr(codebook_io, "save_file", fail)
    with pytest.raises(OSError, match="killed mid-write"):
        codebook_io.write_codebook(path, {"version": "new"}, {"c": np.ones((2, 2), dtype=np.float32)})
    header, tensors = codebook_io.read_codebook(path)
    assert header["version"] == "old" and tensors["c"].sum() == 0
    assert [p.name for p in tmp_path.iterdir()] == ["codebook.safetensors"]


def test_replaced_dir_swaps_a_folder_only_when_complete(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "old").write_text("x")
    with pytest.raises(RuntimeError):
        with replaced_dir(folder) as staging:
            (staging / "new").write_text("y")
            raise RuntimeError("interrupted")
    assert [p.name for p in folder.iterdir()] == ["old"]
    assert [p.name for p in tmp_path.iterdir()] == ["data"]  # no staging folder left
    with replaced_dir(folder) as staging:
        (staging / "new").write_text("y")
    assert [p.name for p in folder.iterdir()] == ["new"]
    assert [p.name for p in tmp_path.iterdir()] == ["data"]
