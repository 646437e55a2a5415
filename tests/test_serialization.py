"""gc.save / gc.load: exact round trips, no pickle, clear errors, atomic writes."""

from __future__ import annotations

import os

import numpy as np
import pytest

import gpuchain as gc
from gpuchain import nn, optim
from gpuchain.serialization import SerializationError, load, save


def test_round_trip_is_bit_exact(tmp_path):
    rng = np.random.default_rng(0)
    obj = {
        "f32": rng.standard_normal((3, 4)).astype(np.float32),
        "f16": np.array([np.nan, -0.0, 65504], dtype=np.float16),
        "i64": np.arange(5, dtype=np.int64),
        "empty": np.zeros((0, 3)),
        "tensor": gc.tensor(rng.standard_normal(2), requires_grad=True),
        "nested": {"lr": 1e-3, "step": 2**70, "name": "adam", "flag": True, "none": None,
                   "nan": float("nan"), "np": np.float32(1.5), "list": [1, "a", (2.5,)]},
    }
    path = tmp_path / "obj.npz"
    save(obj, path)
    back = load(path)
    for k in ("f32", "f16", "i64", "empty"):
        assert back[k].dtype == obj[k].dtype and back[k].shape == obj[k].shape
        assert back[k].tobytes() == obj[k].tobytes()
    assert isinstance(back["tensor"], gc.Tensor) and back["tensor"].requires_grad
    assert back["tensor"].data.tobytes() == obj["tensor"].data.tobytes()
    n = back["nested"]
    assert n["lr"] == 1e-3 and n["step"] == 2**70 and n["name"] == "adam"
    assert n["flag"] is True and n["none"] is None and np.isnan(n["nan"])
    assert n["np"].dtype == np.float32 and n["np"] == 1.5
    assert n["list"] == [1, "a", (2.5,)]
    with np.load(path, allow_pickle=False) as npz:  # readable without pickle
        assert "__manifest__" in npz.files


def test_model_and_optimizer_round_trip_give_identical_predictions(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((16, 4)).astype(np.float32)
    y = rng.integers(0, 3, 16)
    model = nn.MLP([4, 8, 3], seed=3)
    opt = optim.Adam(model, lr=1e-2)
    for _ in range(3):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    save({"model": model.state_dict(), "optim": opt.state_dict()}, tmp_path / "ckpt.npz")
    ckpt = load(tmp_path / "ckpt.npz")
    model2 = nn.MLP([4, 8, 3], seed=99)
    model2.load_state_dict(ckpt["model"])
    opt2 = optim.Adam(model2, lr=1e-2)
    opt2.load_state_dict(ckpt["optim"])
    assert np.array_equal(model(x).data, model2(x).data)
    for m, o in ((model, opt), (model2, opt2)):
        o.zero_grad()
        nn.functional.cross_entropy(m(x), y).backward()
        o.step()
    assert np.array_equal(model(x).data, model2(x).data)


def test_corrupted_or_foreign_files_raise(tmp_path):
    path = tmp_path / "m.npz"
    save({"w": np.arange(1000.0)}, path)
    raw = bytearray(path.read_bytes())
    raw[200:220] = b"\xff" * 20  # inside the array data: the zip CRC no longer matches
    bad = tmp_path / "bad.npz"
    bad.write_bytes(bytes(raw))
    with pytest.raises(SerializationError, match="corrupted"):
        load(bad)
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(SerializationError, match="corrupted or not a gpuchain archive"):
        load(tmp_path / "text.npz")
    np.savez(tmp_path / "plain.npz", x=np.zeros(2))
    with pytest.raises(SerializationError, match="no manifest"):
        load(tmp_path / "plain.npz")
    with pytest.raises(SerializationError, match="no such file"):
        load(tmp_path / "missing.npz")
    truncated = tmp_path / "trunc.npz"
    truncated.write_bytes(path.read_bytes()[:300])
    with pytest.raises(SerializationError):
        load(truncated)
    assert issubclass(SerializationError, gc.GpuchainError)


def test_unsupported_objects_and_failed_save_leave_file_untouched(tmp_path):
    path = tmp_path / "keep.npz"
    save({"a": np.ones(3)}, path)
    before = path.read_bytes()
    with pytest.raises(SerializationError, match="type object"):
        save({"a": object()}, path)
    with pytest.raises(SerializationError, match="needs pickling"):
        save({"a": np.array([None, 1], dtype=object)}, path)
    with pytest.raises(SerializationError, match="keys must be str"):
        save({1: np.ones(2)}, path)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["keep.npz"]  # no temporary files left behind
