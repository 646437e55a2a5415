"""Full training step (forward + cross-entropy + backward + Adam) vs PyTorch CPU, float32.

    python benchmarks/train_step.py [--sizes small medium large] [--repeats 5] [--rounds 3]

Median ms per step (systems timed in interleaved blocks with a gap between them) and the
peak memory of a step (VmHWM above the RSS once model, data and optimizer exist; each
system measured in a fresh process). The same weights go to both systems and a
cross-check (loss and the first layer's weight gradient) runs before any timing.
Results: benchmarks/results/train_step.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import (  # noqa: E402
    fmt_bytes,
    machine_info,
    machine_markdown,
    median_ms,
    peak_rss_bytes,
    reset_peak_rss,
    time_interleaved,
    write_results,
)

SIZES: dict[str, tuple[int, list[int]]] = {
    "small": (64, [784, 256, 256, 10]),
    "medium": (256, [784, 1024, 1024, 1024, 10]),
    "large": (512, [784, 2048, 2048, 2048, 2048, 10]),
}
LR = 1e-3


def _data(size: str) -> tuple[np.ndarray, np.ndarray]:
    batch, sizes = SIZES[size]
    rng = np.random.default_rng(1)
    return (rng.standard_normal((batch, sizes[0])).astype(np.float32),
            rng.integers(0, sizes[-1], batch).astype(np.int64))


def gpuchain_step(size: str) -> tuple[Any, Any]:
    """(step function, model); the step returns the loss Tensor."""
    from gpuchain import nn, optim

    x, y = _data(size)
    model = nn.MLP(SIZES[size][1], activation="relu", seed=0, dtype=np.float32)
    opt = optim.Adam(model, lr=LR)

    def step() -> Any:
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss

    return step, model


def torch_step(size: str, model: Any) -> tuple[Any, Any]:
    """The same network in PyTorch, with ``model``'s weights (a gpuchain MLP)."""
    import torch

    x, y = (torch.from_numpy(a) for a in _data(size))
    layers: list[Any] = []
    for i, layer in enumerate(model):
        lin = torch.nn.Linear(layer.in_features, layer.out_features)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(layer.weight.numpy().T.copy()))
            lin.bias.copy_(torch.from_numpy(layer.bias.numpy().copy()))
        layers += [lin] + ([torch.nn.ReLU()] if i < len(model) - 1 else [])
    net = torch.nn.Sequential(*layers)
    opt = torch.optim.Adam(net.parameters(), lr=LR)

    def step() -> Any:
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(net(x), y)
        loss.backward()
        opt.step()
        return loss

    return step, net


def cross_check(size: str) -> dict[str, float]:
    """Loss and first-layer weight gradient of one fresh step agree across systems."""
    from gpuchain import nn

    g_step, model = gpuchain_step(size)
    t_step, net = torch_step(size, model)
    x, y = _data(size)
    loss = nn.functional.cross_entropy(model(x), y)
    loss.backward()
    import torch

    tl = torch.nn.functional.cross_entropy(net(torch.from_numpy(x)), torch.from_numpy(y))
    tl.backward()
    g, tg = model[0].weight.grad.numpy(), net[0].weight.grad.numpy().T
    loss_err = abs(loss.item() - tl.item())
    grad_err = float(np.abs(g - tg).max())
    # float32 sums over 1000s of terms in different orders: compare in the 2-norm
    rel = float(np.linalg.norm(g - tg) / np.linalg.norm(tg))
    if loss_err > 1e-4 * abs(tl.item()) + 1e-5 or rel > 1e-3:
        raise AssertionError(f"{size}: gpuchain and PyTorch disagree (loss err {loss_err:.3g},"
                             f" gradient relative 2-norm error {rel:.3g})")
    return {"loss_abs_err": loss_err, "grad_max_abs_err": grad_err, "grad_rel_err": rel}


def probe_memory(system: str, size: str, steps: int = 3) -> dict[str, int]:
    """Run in a fresh process: peak RSS of ``steps`` steps above the RSS before them."""
    step, model = gpuchain_step(size)
    if system == "torch":
        step, _ = torch_step(size, model)
        del model  # keep only the PyTorch copy alive
    base = reset_peak_rss()
    for _ in range(steps):
        step()
    return {"rss_before": base, "peak": peak_rss_bytes(), "step_peak": peak_rss_bytes() - base}


def _memory(system: str, size: str) -> dict[str, int] | None:
    cmd = [sys.executable, "-m", "benchmarks.train_step", "--probe", system, size]
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        print(f"memory probe {system}/{size} failed: {done.stderr[-500:]}", file=sys.stderr)
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", nargs="+", choices=list(SIZES), default=list(SIZES))
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--rounds", type=int, default=8)
    p.add_argument("--probe", nargs=2, metavar=("SYSTEM", "SIZE"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.probe:
        print(json.dumps(probe_memory(*args.probe)))
        return 0
    try:
        import torch
    except ImportError:
        torch = None
    env = machine_info()
    if torch is not None:
        env["torch_threads"] = torch.get_num_threads()
    rows = []
    for size in args.sizes:
        batch, sizes = SIZES[size]
        row: dict[str, Any] = {"size": size, "batch": batch, "layers": sizes}
        systems = {"gpuchain": gpuchain_step(size)[0]}
        if torch is not None:
            row["cross_check"] = cross_check(size)
            systems["torch"] = torch_step(size, gpuchain_step(size)[1])[0]
        print(f"[{size}] timing {', '.join(systems)} ...", file=sys.stderr, flush=True)
        times = time_interleaved(systems, repeats=args.repeats, rounds=args.rounds)
        for name, ts in times.items():
            row[f"{name}_ms"] = median_ms(ts)
            row[f"{name}_ms_min"] = min(ts) * 1e3
            mem = _memory(name, size)
            if mem is not None:
                row[f"{name}_step_peak_bytes"] = mem["step_peak"]
                row[f"{name}_peak_bytes"] = mem["peak"]
        if "torch_ms" in row:
            row["time_ratio"] = row["gpuchain_ms"] / row["torch_ms"]
            # the fastest step is the one least disturbed by other work on the machine
            row["time_ratio_min"] = row["gpuchain_ms_min"] / row["torch_ms_min"]
            if "torch_step_peak_bytes" in row and "gpuchain_step_peak_bytes" in row:
                row["memory_ratio"] = (row["gpuchain_step_peak_bytes"]
                                       / row["torch_step_peak_bytes"])
        print(f"[{size}] " + ", ".join(f"{k} {v:.4g}" for k, v in row.items()
                                       if isinstance(v, float) and "err" not in k),
              file=sys.stderr, flush=True)
        rows.append(row)
    env["load_average_at_end"] = list(__import__("os").getloadavg())
    write_results("train_step", {"environment": env, "rows": rows}, _markdown(env, rows))
    return 0


def _cell(r: dict[str, Any], key: str, fmt: str = "{:.1f}") -> str:
    return fmt.format(r[key]) if key in r else "-"


def _ms(r: dict[str, Any], system: str) -> str:
    if f"{system}_ms" not in r:
        return "-"
    return f"{r[f'{system}_ms']:.1f} ({r[f'{system}_ms_min']:.1f})"


def _mem(r: dict[str, Any], system: str) -> str:
    if f"{system}_peak_bytes" not in r:
        return "-"
    return f"{fmt_bytes(r[f'{system}_peak_bytes'])} ({fmt_bytes(r[f'{system}_step_peak_bytes'])})"


def _markdown(env: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    lines = ["# Training step: forward + cross-entropy + backward + Adam (float32, CPU)", "",
             machine_markdown(env), "",
             "| size | batch | layers | gpuchain ms, median (min) | torch ms, median (min) | "
             "time ratio, medians (mins) | "
             "gpuchain peak RSS (step peak) | torch peak RSS (step peak) | memory ratio |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['size']} | {r['batch']} | {'-'.join(map(str, r['layers']))} | "
                     f"{_ms(r, 'gpuchain')} | {_ms(r, 'torch')} | "
                     f"{_cell(r, 'time_ratio', '{:.2f}x')} "
                     f"({_cell(r, 'time_ratio_min', '{:.2f}x')}) | "
                     f"{_mem(r, 'gpuchain')} | "
                     f"{_mem(r, 'torch')} | {_cell(r, 'memory_ratio', '{:.2f}x')} |")
    lines += ["", "Time: median and minimum over interleaved timed blocks (warm-up first, "
              "0.3 s gap between systems); on a shared machine the minimum is the figure "
              "least disturbed by other work. Peak RSS: VmHWM of a fresh process running "
              "three steps; "
              "in parentheses the part above the RSS once model, data and optimizer were "
              "built (the memory ratio compares these step peaks, since the PyTorch process also "
              "holds its library). Ratios: gpuchain / torch (< 1: gpuchain faster or smaller).",
              f"Load average at end: {env.get('load_average_at_end')} (this machine is "
              "shared; timings under load are noisy).", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
