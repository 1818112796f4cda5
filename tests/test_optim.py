"""Optimizers stepped beside torch.optim on the same parameters and gradients; state, errors."""
import json

import numpy as np
import pytest
import torch

from cnnlab.engines import runtime as backend
from cnnlab.layers.base import Parameter
from cnnlab.training.optim import SGD, Adam, AdamW, get_optimizer

SHAPES = [(3, 4), (5,), (2, 1, 3, 3)]


def make_params(dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    return [Parameter(rng.standard_normal(s).astype(dtype), f"p{i}") for i, s in enumerate(SHAPES)]


def grad_sequence(steps, seed=1):
    rng = np.random.default_rng(seed)
    return [[rng.standard_normal(s) for s in SHAPES] for _ in range(steps)]


CASES = [
    (SGD, torch.optim.SGD, {"lr": 0.1}),
    (SGD, torch.optim.SGD, {"lr": 0.05, "momentum": 0.9}),
    (SGD, torch.optim.SGD, {"lr": 0.05, "momentum": 0.9, "nesterov": True}),
    (SGD, torch.optim.SGD, {"lr": 0.1, "weight_decay": 0.01}),
    (SGD, torch.optim.SGD, {"lr": 0.05, "momentum": 0.5, "nesterov": True, "weight_decay": 0.1}),
    (Adam, torch.optim.Adam, {}),
    (Adam, torch.optim.Adam, {"lr": 0.01, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.05}),
    (AdamW, torch.optim.AdamW, {}),
    (AdamW, torch.optim.AdamW, {"lr": 0.02, "betas": (0.5, 0.9), "weight_decay": 0.1}),
]


def run_torch(torch_cls, kw, params, grads, lr_schedule=None, skip=()):
    tparams = [torch.tensor(p.data.copy(), requires_grad=True) for p in params]
    opt = torch_cls(tparams, **kw)
    for t, gs in enumerate(grads):
        if lr_schedule:
            opt.param_groups[0]["lr"] = lr_schedule(t)
        for i, (tp, g) in enumerate(zip(tparams, gs)):
            tp.grad = None if (t, i) in skip else torch.from_numpy(g.copy())
        opt.step()
    return [tp.detach().numpy() for tp in tparams]


def run_ours(cls, kw, params, grads, lr_schedule=None, skip=()):
    opt = cls(params, **kw)
    for t, gs in enumerate(grads):
        if lr_schedule:
            opt.lr = lr_schedule(t)
        for i, (p, g) in enumerate(zip(params, gs)):
            p.grad = None if (t, i) in skip else g.copy()
        opt.step()
    return opt


@pytest.mark.parametrize("cls, torch_cls, kw", CASES)
def test_twenty_steps_match_torch(cls, torch_cls, kw):
    params, grads = make_params(), grad_sequence(20)
    expected = run_torch(torch_cls, kw, params, grads)
    run_ours(cls, kw, params, grads)
    for p, e in zip(params, expected):
        np.testing.assert_allclose(p.data, e, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("cls, torch_cls, kw", [CASES[2], CASES[6], CASES[8]])
def test_lr_schedule_and_skipped_grads_match_torch(cls, torch_cls, kw):
    """lr changed every step, and some parameters without a gradient on some steps (torch skips
    them; Adam's bias correction then counts that parameter's own steps)."""
    params, grads = make_params(), grad_sequence(20)
    schedule = lambda t: kw.get("lr", 1e-3) * 0.9**t  # noqa: E731
    skip = {(0, 1), (3, 0), (4, 0), (10, 2), (11, 1)}
    expected = run_torch(torch_cls, kw, params, grads, schedule, skip)
    opt = run_ours(cls, kw, params, grads, schedule, skip)
    for p, e in zip(params, expected):
        np.testing.assert_allclose(p.data, e, rtol=1e-10, atol=1e-13)
    if cls is not SGD:
        assert opt.state_dict()["counters"] == {"0.step": 18, "1.step": 18, "2.step": 19}


@pytest.mark.parametrize("cls, kw", [(SGD, {"momentum": 0.9, "weight_decay": 1e-3}), (Adam, {}), (AdamW, {})])
def test_float32_parameters_and_state_stay_float32(cls, kw):
    params = make_params(np.float32)
    opt = cls(params, **kw)
    for gs in grad_sequence(3):
        for p, g in zip(params, gs):
            p.grad = g.astype(np.float32)
        opt.step()
    assert all(p.data.dtype == np.float32 for p in params)
    assert all(a.dtype == np.float32 for a in opt.state_dict()["buffers"].values())


@pytest.mark.parametrize("cls, kw", [(SGD, {"lr": 0.1, "momentum": 0.9, "nesterov": True}),
                                     (Adam, {"lr": 0.01, "weight_decay": 0.1}), (AdamW, {"betas": (0.8, 0.9)})])
def test_state_dict_round_trip_resumes_exactly(cls, kw):
    grads = grad_sequence(10)
    straight = make_params()
    run_ours(cls, kw, straight, grads)

    first = make_params()
    opt = run_ours(cls, kw, first, grads[:5])
    opt.lr = opt.lr * 1.0  # unchanged, but exercises the property
    state = opt.state_dict()
    # every leaf is a JSON-able scalar or an array
    arrays = state.pop("buffers")
    json.dumps(state)
    assert all(isinstance(a, np.ndarray) for a in arrays.values())
    state["buffers"] = arrays
    assert state["step"] == 5 and state["name"] == cls.name

    resumed_params = [Parameter(p.data.copy()) for p in first]
    resumed = cls(lr=123.0)  # settings come from the state
    resumed.set_parameters(resumed_params)
    resumed.load_state_dict(json.loads(json.dumps({k: v for k, v in state.items() if k != "buffers"})) | {"buffers": arrays})
    assert resumed.lr == opt.lr and resumed.get_config() == opt.get_config()
    for t, gs in enumerate(grads[5:]):
        for p, g in zip(resumed_params, gs):
            p.grad = g.copy()
        resumed.step()
    for a, b in zip(resumed_params, straight):
        np.testing.assert_array_equal(a.data, b.data)
    assert resumed.step_count == 10


def test_load_state_dict_validates_before_changing_anything():
    params = make_params()
    opt = run_ours(Adam, {}, params, grad_sequence(2))
    before = opt.state_dict()
    bad = opt.state_dict()
    bad["buffers"]["1.exp_avg"] = np.zeros((4,))
    with pytest.raises(ValueError, match=r"state '1.exp_avg' expected an array of shape \(5,\) and dtype float64 "
                                         r"\(parameter 1\); received \(4,\) float64"):
        opt.load_state_dict(bad)
    bad = opt.state_dict()
    bad["buffers"]["7.exp_avg"] = np.zeros((4,))
    with pytest.raises(ValueError, match=r"'7.exp_avg' does not name one of the 3 parameters"):
        opt.load_state_dict(bad)
    with pytest.raises(ValueError, match=r"received the state of a 'sgd' optimizer; expected 'adam'"):
        opt.load_state_dict(SGD(make_params()).state_dict())
    bad = opt.state_dict()
    bad["config"]["lr"] = -1.0
    with pytest.raises(ValueError, match=r"lr must be in \(0.0, inf\); received -1.0"):
        opt.load_state_dict(bad)
    after = opt.state_dict()
    assert after["config"] == before["config"] and after["counters"] == before["counters"]
    for k in before["buffers"]:
        np.testing.assert_array_equal(after["buffers"][k], before["buffers"][k])


def test_params_given_later_and_required_before_step():
    opt = SGD(lr=0.1)
    with pytest.raises(RuntimeError, match=r"SGD has no parameters: pass them to the constructor or call set_parameters"):
        opt.step()
    p = Parameter(np.array([1.0, 2.0]))
    opt.set_parameters([p])
    p.grad = np.array([1.0, -1.0])
    opt.step()
    assert p.data.tolist() == [0.9, 2.1]
    opt.zero_grad()
    assert p.grad is None
    opt.step()  # no gradient: nothing changes
    assert p.data.tolist() == [0.9, 2.1]


def test_bad_gradients_raise_before_any_update():
    params = make_params()
    before = [p.data.copy() for p in params]
    opt = SGD(params, lr=0.1)
    params[0].grad = np.ones(SHAPES[0])
    params[2].grad = np.ones((3, 3))
    with pytest.raises(ValueError, match=r"parameter 2 \(p2\) has shape \(2, 1, 3, 3\) but its grad has shape \(3, 3\)"):
        opt.step()
    params[2].grad = np.ones(SHAPES[2], np.float32)
    with pytest.raises(TypeError, match=r"parameter 2 \(p2\) is float64 but its grad is float32"):
        opt.step()
    for p, b in zip(params, before):
        np.testing.assert_array_equal(p.data, b)
    assert opt.step_count == 0


@pytest.mark.parametrize("params, err, msg", [
    ([], ValueError, r"empty parameter list"),
    ([np.ones(3)], TypeError, r"parameter 0 must be a cnnlab Parameter; received ndarray"),
    (np.ones(3), TypeError, r"received a single ndarray\. Wrap it in a list"),
    (5, TypeError, r"expected a list of Parameters; received int"),
])
def test_set_parameters_errors(params, err, msg):
    with pytest.raises(err, match=msg):
        Adam(params)


def test_duplicate_parameters_rejected():
    p = Parameter(np.ones(2))
    with pytest.raises(ValueError, match=r"same Parameter more than once"):
        SGD([p, p])


@pytest.mark.parametrize("make, err, msg", [
    (lambda: SGD(lr=0), ValueError, r"SGD lr must be in \(0.0, inf\); received 0.0"),
    (lambda: SGD(lr=-0.1), ValueError, r"received -0.1"),
    (lambda: SGD(momentum=-0.5), ValueError, r"SGD momentum must be in \[0.0, 1.0\); received -0.5"),
    (lambda: SGD(nesterov=True), ValueError, r"nesterov=True needs momentum > 0; received momentum=0.0"),
    (lambda: SGD(weight_decay=-1), ValueError, r"SGD weight_decay must be in \[0.0, inf\); received -1.0"),
    (lambda: Adam(betas=(0.9, 1.0)), ValueError, r"Adam beta2 must be in \[0.0, 1.0\); received 1.0"),
    (lambda: Adam(betas=0.9), TypeError, r"betas must be a pair \(beta1, beta2\); received 0.9"),
    (lambda: AdamW(betas=(-0.1, 0.9)), ValueError, r"AdamW beta1 must be in \[0.0, 1.0\); received -0.1"),
    (lambda: Adam(eps=0), ValueError, r"Adam eps must be in \(0.0, inf\); received 0.0"),
    (lambda: Adam(lr="fast"), TypeError, r"Adam lr must be a number; received 'fast'"),
])
def test_hyperparameter_validation(make, err, msg):
    with pytest.raises(err, match=msg):
        make()


def test_lr_is_mutable_and_validated():
    opt = Adam(lr=0.1)
    opt.lr = 0.05
    assert opt.lr == 0.05 and opt.get_config()["lr"] == 0.05
    with pytest.raises(ValueError, match=r"received -1.0"):
        opt.lr = -1.0
    assert opt.lr == 0.05


def test_numpy_scalar_lr_does_not_upcast():
    p = Parameter(np.ones(3, np.float32))
    opt = SGD([p], lr=0.1)
    opt.lr = np.float64(0.5)
    p.grad = np.ones(3, np.float32)
    opt.step()
    assert p.data.dtype == np.float32 and p.data.tolist() == [0.5, 0.5, 0.5]


def test_get_optimizer_and_config():
    assert isinstance(get_optimizer("SGD", lr=0.1, momentum=0.9), SGD)
    adamw = get_optimizer("adamw")
    assert isinstance(adamw, AdamW) and adamw.weight_decay == 0.01
    assert get_optimizer(adamw) is adamw
    with pytest.raises(ValueError, match=r"unknown optimizer 'rmsprop'; known optimizers: sgd, adam, adamw"):
        get_optimizer("rmsprop")
    with pytest.raises(TypeError, match=r"Adam has no setting 'momentum'; its settings are params, lr, betas"):
        get_optimizer("adam", momentum=0.9)
    with pytest.raises(TypeError, match=r"apply only when naming an optimizer"):
        get_optimizer(adamw, lr=0.1)
    for opt in (SGD(lr=0.1, momentum=0.9, nesterov=True), Adam(betas=(0.8, 0.9)), AdamW()):
        config = json.loads(json.dumps(opt.get_config()))
        assert type(opt)(**config).get_config() == opt.get_config()
    assert repr(SGD(lr=0.1, momentum=0.9)) == "SGD(lr=0.1, momentum=0.9)"
    assert repr(AdamW()) == "AdamW(lr=0.001)"


# ----- the Numba engine's one-pass updates (cnnlab.engines.numba_ops.adam_update / sgd_update) --------
# three large enough for the kernels (>= 4,096 values): two run on one thread, (300, 256) on all
BIG = [(72, 64), (5,), (2, 32, 9, 9), (300, 256)]


@pytest.mark.skipif(not backend.HAVE_NUMBA, reason="the compiled updates need Numba")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cls, torch_cls, kw", CASES)
def test_compiled_updates_give_the_numpy_bits_and_torch_numbers(cls, torch_cls, kw, dtype, monkeypatch):
    from cnnlab.engines import numba_ops

    used, sizes = [], {}
    for name in ("adam_update", "sgd_update"):
        real = getattr(numba_ops, name)
        monkeypatch.setattr(numba_ops, name, lambda *a, _real=real, **k: used.append(_real(*a, **k)) or used[-1])
    kernels = backend.kernels()
    for name in ("adam_step", "sgd_step", "adam_step_serial", "sgd_step_serial"):
        real = getattr(kernels, name)
        monkeypatch.setattr(kernels, name, lambda p, *a, _real=real, _name=name: (
            sizes.setdefault(_name.endswith("serial"), set()).add(p.size), _real(p, *a))[1])
    rng = np.random.default_rng(3)
    start = [rng.standard_normal(s).astype(dtype) for s in BIG]
    grads = [[rng.standard_normal(s).astype(dtype) for s in BIG] for _ in range(6)]
    for gs in grads[2:4]:
        gs[0][:3] = 0  # zero gradients (Adam: 0/(0 + eps))
        gs[2].reshape(-1)[::7] *= 1e4
    results = {}
    for engine in ("numpy", "numba"):
        params = [Parameter(a.copy(), f"p{i}") for i, a in enumerate(start)]
        with backend.backend(engine):
            opt = cls(params, **kw)
            for t, gs in enumerate(grads):
                for i, (p, g) in enumerate(zip(params, gs)):
                    p.grad = None if (t, i) == (1, 0) else g.copy()
                opt.step()
        results[engine] = ([p.data for p in params], opt.state_dict()["buffers"])
    assert used.count(True) == 3 * 6 - 1  # the kernels ran: 3 large parameters, 6 steps, one gradient missing
    assert sizes == {True: {4608, 5184}, False: {76800}}  # one thread below 65,536 values, all threads above
    (p_np, s_np), (p_nb, s_nb) = results["numpy"], results["numba"]
    for a, b in zip(p_np, p_nb):
        assert a.dtype == b.dtype == dtype
        np.testing.assert_array_equal(a, b)  # bit for bit (same operations, same order)
    assert s_np.keys() == s_nb.keys()
    for key in s_np:
        np.testing.assert_array_equal(s_np[key], s_nb[key])
    if dtype == np.float64:
        tparams = [torch.tensor(a.copy(), requires_grad=True) for a in start]
        topt = torch_cls(tparams, **kw)
        for t, gs in enumerate(grads):
            for i, (tp, g) in enumerate(zip(tparams, gs)):
                tp.grad = None if (t, i) == (1, 0) else torch.from_numpy(g.copy())
            topt.step()
        for a, tp in zip(p_nb, tparams):
            np.testing.assert_allclose(a, tp.detach().numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.skipif(not backend.HAVE_NUMBA, reason="the compiled updates need Numba")
def test_compiled_updates_skip_what_they_cannot_take():
    from cnnlab.engines import numba_ops

    p = np.zeros((80, 64), dtype=np.float32)
    g = np.ones((64, 80), dtype=np.float32).T  # strided: NumPy's path runs instead, nothing changes here
    assert not numba_ops.sgd_update(p, g, g, lr=0.1, momentum=0.0, weight_decay=0.0, nesterov=False, first=True)
    assert not numba_ops.sgd_update(p[:2], g[:2], g[:2], lr=0.1, momentum=0.0, weight_decay=0.0, nesterov=False,
                                    first=True)  # too small
    with backend.backend("numpy"):
        assert not numba_ops.sgd_update(p, p.copy(), p.copy(), lr=0.1, momentum=0.0, weight_decay=0.0,
                                        nesterov=False, first=True)
    assert (p == 0).all()
    assert numba_ops.sgd_update(p, np.ones_like(p), p.copy(), lr=0.5, momentum=0.0, weight_decay=0.0,
                                nesterov=False, first=True)
    assert (p == -0.5).all()
