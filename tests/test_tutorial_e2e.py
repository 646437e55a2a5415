"""End to end, written the way a PyTorch tutorial trains a classifier: scikit-learn's digits
when installed (else a generated data set of the same shape), an MLP with LayerNorm and
Dropout, AdamW with a cosine schedule and gradient clipping, a train/eval split evaluated
under no_grad, and a checkpoint mid-training whose resumed run continues bit for bit."""

from __future__ import annotations

import numpy as np

import gpuchain as gc
from gpuchain import nn, optim
from gpuchain.data import batches
from gpuchain.nn import functional as F
from gpuchain.nn.utils import clip_grad_norm_

EPOCHS = 6
RESUME_AT = 3


def load_data():
    try:
        from sklearn.datasets import load_digits

        d = load_digits()
        x, y = d.data.astype(np.float32) / 16.0, d.target.astype(np.int64)
    except ImportError:  # ten noisy 8x8 prototypes, like the digits
        rng = np.random.default_rng(0)
        protos = rng.uniform(0, 1, (10, 64)) > 0.6
        y = rng.integers(0, 10, 1500)
        x = (protos[y] + rng.normal(0, 1.1, (1500, 64))).astype(np.float32)
    order = np.random.default_rng(1).permutation(len(y))
    x, y = x[order], y[order]
    split = int(0.8 * len(y))
    return (x[:split], y[:split]), (x[split:], y[split:])


def make_model(seed):
    return nn.Sequential(
        nn.Dense(64, 128, seed=seed), nn.LayerNorm(128), nn.GELU(), nn.Dropout(0.2, seed=seed),
        nn.Dense(128, 64, seed=seed + 1), nn.LayerNorm(64), nn.ReLU(),
        nn.Dense(64, 10, seed=seed + 2))


def make_training(seed, steps_per_epoch):
    model = make_model(seed)
    opt = optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-2)
    sched = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=EPOCHS * steps_per_epoch)
    return model, opt, sched


def train_epoch(model, opt, sched, x, y, epoch):
    model.train()
    losses = []
    for xb, yb in batches(x, y, batch_size=64, shuffle=True, seed=epoch):
        opt.zero_grad()
        loss = F.cross_entropy(model(xb), yb.numpy())
        loss.backward()
        clip_grad_norm_(model.parameters(), max_norm=1.0)
        opt.step()
        sched.step()
        losses.append(loss.item())
    return losses


def evaluate(model, x, y):
    model.eval()
    correct = 0
    with gc.no_grad():
        for xb, yb in batches(x, y, batch_size=256, shuffle=False):
            logits = model(xb)
            assert not logits.requires_grad
            correct += int((logits.numpy().argmax(axis=1) == yb.numpy()).sum())
    return correct / len(y)


def test_tutorial_training_and_bit_identical_resume(tmp_path):
    (xtr, ytr), (xte, yte) = load_data()
    steps = -(-len(ytr) // 64)
    model, opt, sched = make_training(0, steps)
    before = evaluate(model, xte, yte)
    history = []
    for epoch in range(EPOCHS):
        history += train_epoch(model, opt, sched, xtr, ytr, epoch)
        if epoch == RESUME_AT - 1:
            gc.save({"model": model.state_dict(), "optimizer": opt.state_dict(),
                     "scheduler": sched.state_dict(), "epoch": epoch}, tmp_path / "ck.npz")
    accuracy = evaluate(model, xte, yte)
    assert accuracy > 0.85 and accuracy > before + 0.5, (before, accuracy)
    assert np.mean(history[-steps:]) < 0.5 * np.mean(history[:steps])
    assert sched.get_last_lr()[0] < 1e-4  # the cosine has run down

    # resume from the checkpoint in a fresh process-like setting (other seeds, other lr)
    ck = gc.load(tmp_path / "ck.npz")
    model2, opt2, sched2 = make_training(123, steps)
    model2.load_state_dict(ck["model"])
    opt2.load_state_dict(ck["optimizer"])
    sched2.load_state_dict(ck["scheduler"])
    resumed = []
    for epoch in range(ck["epoch"] + 1, EPOCHS):
        resumed += train_epoch(model2, opt2, sched2, xtr, ytr, epoch)
    assert resumed == history[RESUME_AT * steps:]  # the same losses, bit for bit
    for (name, p), q in zip(model.named_parameters(), model2.parameters()):
        assert np.array_equal(p.numpy(), q.numpy()), name
    assert evaluate(model2, xte, yte) == accuracy
