"""hymirec.io: the one safetensors reader."""

import numpy as np
import pytest
from safetensors.numpy import save_file

from hymirec.io import read_safetensors


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
