"""Version counters per storage: writes through ``Tensor.data`` (and every other alias of a
tensor's memory that gpuchain hands out) are seen by backward; reads never are."""

import pickle

import numpy as np
import pytest

import gpuchain as gc
from gpuchain import nn
from gpuchain.engine.tracked import TrackedArray


def f64(v):
    return gc.tensor(np.asarray(v, dtype=np.float64))


def _saved_product():
    x = f64([1.0, 2.0, 3.0]).requires_grad_()
    w = f64([4.0, 5.0, 6.0]).requires_grad_()
    return x, w, (x * w).sum()


def test_issue_example_write_through_data_raises_naming_op_and_tensor():
    x, w, y = _saved_product()
    w.data[...] = 0
    with pytest.raises(RuntimeError, match=r"op 'mul'.*input 1, a leaf that requires grad "
                                           r"\(float64\(3,\)\).*modified in place"):
        y.backward()
    assert x.grad is None and w.grad is None  # nothing accumulated before the refusal


WRITES = {
    "setitem slice": lambda a: a.__setitem__(slice(0, 1), 7.0),
    "setitem fancy": lambda a: a.__setitem__([0, 0], 7.0),
    "setitem bool mask": lambda a: a.__setitem__(a > 4.5, 0.0),
    "iadd": lambda a: a.__iadd__(1.0),
    "isub": lambda a: a.__isub__(1.0),
    "imul": lambda a: a.__imul__(2.0),
    "itruediv": lambda a: a.__itruediv__(2.0),
    "ufunc out": lambda a: np.multiply(a, 2.0, out=a),
    "ufunc at": lambda a: np.add.at(a, [0, 0], 1.0),
    "fill": lambda a: a.fill(0.0),
    "sort": lambda a: a[::-1].sort(),
    "put": lambda a: a.put([1], 0.0),
    "copyto": lambda a: np.copyto(a, 0.0),
    "putmask": lambda a: np.putmask(a, a > 4.5, 0.0),
    "place": lambda a: np.place(a, a > 4.5, [0.0]),
    "view of a view": lambda a: a.reshape(3, 1)[1:].__setitem__(Ellipsis, 0.0),
    "out= of a reduction": lambda a: np.sum(np.ones((2, 3)), axis=0, out=a),
    "out= of np.dot": lambda a: np.dot(np.ones((3, 2)), np.ones(2), out=a),
    "out= of np.concatenate": lambda a: np.concatenate([np.ones(1), np.ones(2)], out=a),
    "out= of np.take": lambda a: np.take(np.arange(5.0), [0, 1, 2], out=a),
}


@pytest.mark.parametrize("name", sorted(WRITES))
def test_every_way_of_writing_through_data_is_seen(name):
    x, w, y = _saved_product()
    WRITES[name](w.data)
    with pytest.raises(RuntimeError, match="modified in place"):
        y.backward()


@pytest.mark.parametrize("alias", ["numpy", "detach", "detach_data", "view_op"])
def test_aliases_of_the_same_storage_share_the_counter(alias):
    x, w, y = _saved_product()
    if alias == "numpy":
        w.numpy()[0] = 0.0
    elif alias == "detach":
        w.detach().zero_()
    elif alias == "detach_data":
        w.detach().data[1] = 0.0
    else:
        with gc.no_grad():
            view = w[1:]  # a view of w's memory
        view.data[...] = 0.0
    with pytest.raises(RuntimeError, match="modified in place"):
        y.backward()


def test_assigning_data_counts_as_a_write():
    x, w, y = _saved_product()
    w.data = np.zeros(3)
    with pytest.raises(RuntimeError, match="modified in place"):
        y.backward()


def test_optimizer_step_between_forward_and_backward_raises():
    model = nn.MLP([3, 4, 2], seed=0, dtype=np.float64)
    x = f64(np.ones((5, 3)))
    loss = model(x).sum()
    opt = gc.optim.SGD(model, lr=0.1)
    loss.backward(retain_graph=True)
    opt.step()
    with pytest.raises(RuntimeError, match="modified in place"):
        loss.backward()


def test_load_state_dict_between_forward_and_backward_raises():
    model = nn.MLP([3, 4, 2], seed=0, dtype=np.float64)
    state = nn.MLP([3, 4, 2], seed=1, dtype=np.float64).state_dict()
    loss = model(f64(np.ones((5, 3)))).sum()
    model.load_state_dict(state)
    with pytest.raises(RuntimeError, match="modified in place"):
        loss.backward()


# --- no false alarms -----------------------------------------------------------------------------

def test_reads_and_computations_on_data_are_not_writes():
    x, w, y = _saved_product()
    d = w.data
    r = (d * 2 + 1, d.sum(), np.exp(d), d @ d, d.copy(), np.concatenate([d, d]), d[::2] > 0)
    r[4][...] = 0.0  # a copy is other memory
    np.add(d, 1.0, out=np.empty(3))  # out= elsewhere
    y.backward()
    np.testing.assert_array_equal(x.grad.numpy(), [4.0, 5.0, 6.0])
    for a in r[:3]:
        assert type(a) in (np.ndarray, np.float64)


def test_writes_before_the_forward_or_after_the_backward_are_fine():
    x, w, _ = _saved_product()
    w.data[0] = 10.0  # before the op saves w
    y = (x * w).sum()
    y.backward()
    w.data[...] = 0.0  # after: the graph is spent
    np.testing.assert_array_equal(x.grad.numpy(), [10.0, 5.0, 6.0])
    x.grad = None
    (x * w).sum().backward()  # a new forward sees the new values
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 0.0, 0.0])


def test_writing_an_unrelated_array_or_a_tensor_not_saved_is_fine():
    x, w, y = _saved_product()
    other = f64([1.0, 1.0, 1.0])
    other.data[...] = 3.0
    np.zeros(3)[...] = 1.0
    y.backward()
    np.testing.assert_array_equal(x.grad.numpy(), [4.0, 5.0, 6.0])


@pytest.mark.parametrize("op", [gc.exp, gc.tanh, gc.sigmoid, gc.sqrt])
def test_a_write_to_a_saved_output_is_seen(op):
    x = f64([0.5, 1.0]).requires_grad_()
    y = op(x)  # these ops save their output, which their derivative reads
    y.data[...] = 0.0
    with pytest.raises(RuntimeError, match=rf"op '{op.__name__}': its output \(float64\(2,\)\)"):
        y.sum().backward()


def test_a_write_to_a_view_of_a_saved_output_is_seen():
    x = f64([0.5, 1.0]).requires_grad_()
    y = gc.exp(x)
    y.data[:1] += 1.0
    with pytest.raises(RuntimeError, match="its output"):
        (y * 2).sum().backward()


def test_ops_that_save_only_their_output_ignore_later_input_writes():
    x = f64([0.5, 1.0]).requires_grad_()
    y = gc.exp(x)  # exp saves its output, not x
    x.data[...] = 0.0
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.exp([0.5, 1.0]))


# --- what .data is ----------------------------------------------------------------------

def test_data_shares_memory_and_storage_stays_a_plain_ndarray():
    t = f64([1.0, 2.0])
    d = t.data
    assert isinstance(d, np.ndarray) and isinstance(d, TrackedArray)
    d[0] = 5.0
    assert t.numpy()[0] == 5.0
    u = gc.Tensor(d)  # a tensor made from a tracked view keeps a plain array
    assert type(u._data) is np.ndarray and np.shares_memory(u._data, t._data)
    assert type((t * 2)._data) is np.ndarray
    assert type(gc.tensor(d)._data) is np.ndarray and not np.shares_memory(gc.tensor(d)._data, d)


def test_version_counter_increases_with_each_write():
    t = f64([1.0, 2.0])
    versions = [t._version]
    t.data[0] = 3.0
    versions.append(t._version)
    t.data += 1
    versions.append(t._version)
    assert versions[0] == 0 and versions[0] < versions[1] < versions[2]


def test_data_pickles_as_a_plain_ndarray():
    back = pickle.loads(pickle.dumps(f64([1.0, 2.0]).data))
    assert type(back) is np.ndarray and back.tolist() == [1.0, 2.0]


def test_data_setter_validates_before_changing_anything():
    w = f64([1.0, 2.0]).requires_grad_()
    before = w._data
    with pytest.raises(gc.GpuchainError, match="floating"):
        w.data = np.array([1, 2])
    with pytest.raises(gc.GpuchainError, match="str"):
        w.data = "abc"
    assert w._data is before


def test_copies_are_plain_arrays_and_the_view_prints_as_an_ndarray():
    import copy

    d = f64([1.0, 2.0]).data
    for c in (d.copy(), d.astype(np.float32), d.flatten(), copy.copy(d), copy.deepcopy(d)):
        assert type(c) is np.ndarray and not np.shares_memory(c, d)
    assert type(d.reshape(2, 1)) is TrackedArray  # a view stays tracked
    assert repr(d) == "array([1., 2.])"
