"""Checkpoints: model + optimizer + scheduler in one file, safetensors weights, PyTorch state
dicts into gpuchain models, robustness of gc.save / gc.load (kills, umask, bad files)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import gpuchain as gc
from gpuchain import nn, optim
from gpuchain.errors import SerializationError, StateDictError
from gpuchain.serialization import load_torch_state_dict


def test_model_optimizer_scheduler_in_one_file(tmp_path):
    model = nn.MLP([3, 5, 2], seed=0, dtype=np.float64)
    opt = optim.AdamW(model, lr=0.01)
    sched = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=10)
    x, y = np.ones((4, 3)), np.array([0, 1, 1, 0])
    for _ in range(3):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        sched.step()
    gc.save({"model": model.state_dict(), "optimizer": opt.state_dict(),
             "scheduler": sched.state_dict()}, tmp_path / "ck.npz")
    ck = gc.load(tmp_path / "ck.npz")
    m2 = nn.MLP([3, 5, 2], seed=1, dtype=np.float64)
    o2 = optim.AdamW(m2, lr=0.5)
    s2 = optim.lr_scheduler.CosineAnnealingLR(o2, T_max=10)
    m2.load_state_dict(ck["model"])
    o2.load_state_dict(ck["optimizer"])
    s2.load_state_dict(ck["scheduler"])
    assert o2.param_groups[0]["lr"] == opt.param_groups[0]["lr"]
    for m, o, s in ((model, opt, sched), (m2, o2, s2)):
        o.zero_grad()
        nn.functional.cross_entropy(m(x), y).backward()
        o.step()
        s.step()
    for p, q in zip(model.parameters(), m2.parameters()):
        np.testing.assert_array_equal(p.numpy(), q.numpy())


def test_safetensors_round_trip_without_pickle(tmp_path):
    model = nn.MLP([3, 4, 2], seed=0)
    path = tmp_path / "w.safetensors"
    weights = {**model.state_dict(), "half": np.arange(3, dtype=np.float16),
               "ints": np.arange(4, dtype=np.int64)}
    gc.save(weights, path, format="safetensors")
    back = gc.load(path)
    assert set(back) == set(weights)
    for k, v in weights.items():
        assert back[k].dtype == v.dtype and np.array_equal(back[k], v)
    n = int.from_bytes(path.read_bytes()[:8], "little")
    header = json.loads(path.read_bytes()[8:8 + n])
    assert header["0.weight"]["dtype"] == "F32" and header["0.weight"]["shape"] == [3, 4]
    with pytest.raises(SerializationError, match="expected a flat mapping"):
        gc.save([np.ones(2)], path, format="safetensors")
    with pytest.raises(SerializationError, match="unknown format"):
        gc.save({}, path, format="pickle")


def test_safetensors_files_interoperate_with_the_safetensors_package(tmp_path):
    st = pytest.importorskip("safetensors.numpy")
    ours = {"a": np.arange(6.0).reshape(2, 3), "b": np.ones(2, np.float32)}
    gc.save(ours, tmp_path / "ours.safetensors", format="safetensors")
    theirs = st.load_file(str(tmp_path / "ours.safetensors"))
    assert all(np.array_equal(theirs[k], v) for k, v in ours.items())
    st.save_file(ours, str(tmp_path / "theirs.safetensors"))
    back = gc.load(tmp_path / "theirs.safetensors")
    assert all(np.array_equal(back[k], v) and back[k].dtype == v.dtype for k, v in ours.items())


def test_pytorch_state_dict_into_gpuchain_mlp_with_mismatch_report():
    torch = pytest.importorskip("torch")
    ref = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.ReLU(), torch.nn.Linear(5, 2))
    ref = ref.double()
    model = nn.MLP([3, 5, 2], seed=0, dtype=np.float64)
    report = load_torch_state_dict(model, ref.state_dict())
    assert report.ok and report.mapped[0] == ("0.weight", "0.weight", True)
    x = np.random.default_rng(0).standard_normal((4, 3))
    np.testing.assert_allclose(model(x).numpy(), ref(torch.from_numpy(x)).detach().numpy(),
                               rtol=1e-12)
    # a single Linear into a Dense
    lin = torch.nn.Linear(3, 5).double()
    dense = nn.Dense(3, 5, dtype=np.float64)
    assert load_torch_state_dict(dense, lin.state_dict()).ok
    np.testing.assert_array_equal(dense.weight.numpy(), lin.weight.detach().numpy().T)
    # mismatches are all reported and nothing changes
    wrong = nn.MLP([3, 4, 2], seed=0, dtype=np.float64)
    before = {k: v.copy() for k, v in wrong.state_dict().items()}
    with pytest.raises(StateDictError) as err:
        load_torch_state_dict(wrong, ref.state_dict())
    msg = str(err.value)
    assert "2.weight (5, 3) -> 0.weight (3, 4)" not in msg
    assert "0.weight (5, 3) -> 0.weight (3, 4)" in msg and "Nothing was loaded" in msg
    assert all(np.array_equal(v, before[k]) for k, v in wrong.state_dict().items())
    extra = dict(ref.state_dict())
    extra["3.weight"] = torch.zeros(2, 2)
    report = load_torch_state_dict(model, extra, strict=False)
    assert report.unexpected == ["3.weight"] and not report.ok


def test_load_rejects_npy_and_deeply_nested_manifests(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros(3))
    with pytest.raises(SerializationError, match=r"\.npy array file"):
        gc.load(tmp_path / "a.npy")
    for depth in (200, 100_000):  # past MAX_DEPTH; past the JSON parser's recursion limit
        tree = '{"k":"list","items":[' * depth + '{"k":"py","v":null}' + "]}" * depth
        manifest = '{"format":"gpuchain-npz","version":1,"tree":' + tree + "}"
        np.savez(tmp_path / "deep.npz",
                 __manifest__=np.frombuffer(manifest.encode(), dtype=np.uint8))
        with pytest.raises(SerializationError, match="nested"):
            gc.load(tmp_path / "deep.npz")
    nested = None
    for _ in range(500):
        nested = [nested]
    with pytest.raises(SerializationError, match="nested deeper"):
        gc.save(nested, tmp_path / "n.npz")
    assert not (tmp_path / "n.npz").exists()


def test_save_uses_the_umask_and_cleans_up_after_a_killed_save(tmp_path):
    path = tmp_path / "ck.npz"
    old = os.umask(0o027)
    try:
        gc.save({"a": np.ones(2)}, path)
    finally:
        os.umask(old)
    assert (os.stat(path).st_mode & 0o777) == 0o640
    # a save killed while writing leaves its temporary file; the next save removes it
    script = textwrap.dedent(f"""
        import os, signal, numpy as np, gpuchain.serialization as s
        def write(f):
            f.write(b"partial")
            f.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        s._atomic_write({str(path)!r}, write)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True)
    assert proc.returncode == -signal.SIGKILL
    leftovers = [n for n in os.listdir(tmp_path) if n != "ck.npz"]
    assert len(leftovers) == 1 and leftovers[0].startswith(".ck.npz.gpuchain-tmp-")
    assert np.array_equal(gc.load(path)["a"], np.ones(2))  # the old file is intact
    gc.save({"a": np.zeros(2)}, path)
    assert sorted(os.listdir(tmp_path)) == ["ck.npz"]


def test_weights_only_safetensors_of_a_model_with_dropout(tmp_path):
    model = nn.Sequential(nn.Dense(3, 4, seed=0), nn.Dropout(0.5, seed=1), nn.Dense(4, 2))
    sd = model.state_dict()
    assert "1._extra_state" in sd
    gc.save(sd, tmp_path / "w.safetensors", format="safetensors")
    back = gc.load(tmp_path / "w.safetensors")
    assert "1._extra_state" not in back and set(back) == set(sd) - {"1._extra_state"}
    other = nn.Sequential(nn.Dense(3, 4, seed=5), nn.Dropout(0.5, seed=6), nn.Dense(4, 2))
    other.load_state_dict(back)  # the generator state is optional
    for p, q in zip(model.parameters(), other.parameters()):
        np.testing.assert_array_equal(p.numpy(), q.numpy())
    bad = dict(sd)
    bad["1._extra_state"] = {"bit_generator": "NoSuchGenerator"}
    before = [p.numpy().copy() for p in other.parameters()]
    with pytest.raises(StateDictError, match="unknown bit generator"):
        other.load_state_dict({**bad, "0.weight": np.zeros((3, 4), np.float32)})
    for p, b in zip(other.parameters(), before):  # nothing changed
        np.testing.assert_array_equal(p.numpy(), b)
