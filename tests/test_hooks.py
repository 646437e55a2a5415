"""Tensor hooks (register_hook, retain_grad, grad_fn) against PyTorch's semantics."""

import numpy as np
import pytest

import gpuchain as gc

torch = pytest.importorskip("torch")

X0 = np.array([0.5, -1.5, 2.0])


def both(x0=X0):
    return (gc.tensor(x0, requires_grad=True),
            torch.tensor(x0, dtype=torch.float64, requires_grad=True))


def test_hook_on_an_intermediate_scales_the_gradient_and_retain_grad_sees_the_result():
    outs = []
    for lib, x in zip((gc, torch), both()):
        y = x * 2
        y.retain_grad()
        y.register_hook(lambda g: g * 3)
        ((y ** 2).sum() + (y * x).sum()).backward()  # y reaches the loss on two paths
        outs.append((x.grad.detach().numpy(), y.grad.detach().numpy()))
    for a, b in zip(*outs):
        np.testing.assert_allclose(a, b, rtol=1e-15)


def test_hook_is_called_once_with_the_total_over_every_path():
    x = gc.tensor(X0, requires_grad=True)
    y = gc.sin(x)
    seen = []
    y.register_hook(lambda g: seen.append(g.numpy().copy()))
    (y * y + 3 * y).sum().backward()
    assert len(seen) == 1
    np.testing.assert_allclose(seen[0], 2 * np.sin(X0) + 3, rtol=1e-15)


def test_hooks_on_a_leaf_change_what_is_accumulated():
    outs = []
    for x in both():
        x.register_hook(lambda g: g.clamp(-1, 1) if hasattr(g, "clamp") else g.clip(-1, 1))
        (x ** 3).sum().backward()
        outs.append(x.grad.detach().numpy())
    np.testing.assert_allclose(outs[0], outs[1], rtol=1e-15)
    np.testing.assert_allclose(outs[0], np.clip(3 * X0 ** 2, -1, 1))


def test_hooks_run_in_registration_order_and_handles_remove_them():
    x = gc.tensor(X0, requires_grad=True)
    order = []
    h1 = x.register_hook(lambda g: order.append(1) or g + 1)
    x.register_hook(lambda g: order.append(2) or g * 10)
    x.sum().backward()
    assert order == [1, 2]
    np.testing.assert_allclose(x.grad.numpy(), [20.0, 20.0, 20.0])
    h1.remove()
    h1.remove()  # a second remove does nothing
    x.grad = None
    order.clear()
    x.sum().backward()
    assert order == [2]
    np.testing.assert_allclose(x.grad.numpy(), [10.0, 10.0, 10.0])


def test_retained_gradients_accumulate_over_backward_calls_as_in_pytorch():
    outs = []
    for x in both():
        y = x.exp()
        y.retain_grad()
        (y * y).sum().backward(retain_graph=True)
        y.sum().backward()
        outs.append(y.grad.detach().numpy())
    np.testing.assert_allclose(outs[0], outs[1], rtol=1e-15)


def test_hooks_under_create_graph_are_differentiated():
    outs = []
    for lib, x in zip((gc, torch), both()):
        y = x * x
        handle = y.register_hook(lambda g, y=y: g * y)  # a gradient that depends on x
        loss = y.sum()
        if lib is gc:
            loss.backward(create_graph=True)
            gx = x.grad
            handle.remove()
            x.grad = None
            gx.sum().backward()
            outs.append(x.grad.numpy())
        else:
            (gx,) = torch.autograd.grad(loss, x, create_graph=True)
            handle.remove()
            (gxx,) = torch.autograd.grad(gx.sum(), x)
            outs.append(gxx.numpy())
    np.testing.assert_allclose(outs[0], outs[1], rtol=1e-14)
    np.testing.assert_allclose(outs[0], 6 * X0 ** 2)  # d/dx sum(x^2 * 2x)


def test_hooks_fire_inside_transforms_which_write_no_grad():
    def f(x):
        y = x * 2
        y.register_hook(lambda g: g * 10)
        y.retain_grad()
        f.y = y
        return (y ** 2).sum()

    g = gc.grad(f)(gc.tensor(X0))
    np.testing.assert_allclose(g.numpy(), 2 * 2 * (2 * X0) * 10)
    assert f.y.grad is None


def test_a_hook_returning_the_wrong_shape_raises_and_no_grad_is_written():
    x = gc.tensor(X0, requires_grad=True)
    w = gc.tensor(X0, requires_grad=True)

    def bad(g):
        return g.sum()

    y = x * w
    y.register_hook(bad)
    with pytest.raises(RuntimeError, match=r"hook 'bad'.*shape \(\).*\(3,\)"):
        y.sum().backward()
    assert x.grad is None and w.grad is None


def test_hooks_need_a_tensor_that_requires_grad_and_a_callable():
    with pytest.raises(RuntimeError, match="does not require grad"):
        gc.tensor(X0).register_hook(lambda g: g)
    with pytest.raises(TypeError, match="callable"):
        gc.tensor(X0, requires_grad=True).register_hook(3)


def test_retain_grad_on_a_leaf_changes_nothing_and_grad_fn_names_the_op():
    x = gc.tensor(X0, requires_grad=True)
    x.retain_grad()
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * X0)
    assert x.grad_fn is None and (x * 2).grad_fn.op.name == "mul"
    with gc.no_grad():
        assert (x * 2).grad_fn is None
