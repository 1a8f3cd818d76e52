"""Runs one official DreamerV3 (JAX) function on given numbers: the reference side of the parity tests.

Executed by the reference environment's interpreter (``benchmarks/reference/setup.sh``),
never imported by torchrl-psp's: JAX and the official packages (``dreamerv3``,
``embodied``, ``ninjax``) are imported inside :func:`main` only, so that pytest's doctest
collection of this file in the project's interpreter needs none of them.

Usage::

    REFERENCE_PYTHON tests/parity/reference_runner.py CASE INPUT.npz OUTPUT.npz

``INPUT.npz`` holds the case's arrays and a JSON string ``config`` (its scalar options);
``OUTPUT.npz`` receives the official results. Each case calls the official code at
commit f8817c4 of danijar/dreamerv3 (``dreamerv3/agent.py``, ``dreamerv3/rssm.py``,
``embodied/jax/*.py``); where the official code computes a term inside a method, the case
calls that method with a stand-in ``self`` that carries only the attributes it reads.
"""

from __future__ import annotations

import json
import sys


def _cases():
    import os

    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    import elements
    import embodied.jax.heads as heads
    import embodied.jax.nets as nets
    import embodied.jax.opt as opt
    import embodied.jax.outs as outs
    import embodied.jax.utils as utils
    import jax
    import jax.numpy as jnp
    import ninjax as nj
    import numpy as np
    from dreamerv3 import agent, rssm

    f32 = jnp.float32
    # As --jax.compute_dtype float32 (embodied/jax/internal.py sets this global).
    nets.COMPUTE_DTYPE = f32

    def symexp_twohot_bins(num_bins):
        """The bins of the official ``Head.symexp_twohot`` (read from the head it builds)."""

        def fn(x):
            head = heads.Head(
                elements.Space(np.float32, ()), "symexp_twohot", bins=num_bins, name="head"
            )
            return head(x).bins

        _, bins = nj.pure(fn)({}, jnp.zeros((1, 4), f32), create=True, seed=0)
        return bins

    def case_symlog(a, cfg):
        x = jnp.asarray(a["x"])
        return {"symlog": nets.symlog(x), "symexp": nets.symexp(x)}

    def case_twohot(a, cfg):
        bins = symexp_twohot_bins(int(cfg["num_bins"]))
        dist = outs.TwoHot(jnp.asarray(a["logits"]), bins)
        return {
            "bins": bins,
            "loss": dist.loss(jnp.asarray(a["target"])),
            "pred": dist.pred(),
        }

    def case_kl(a, cfg):
        post, prior = jnp.asarray(a["post"]), jnp.asarray(a["prior"])
        stoch, classes = post.shape[-2:]

        def losses(post, prior):
            # The official RSSM.loss on given logits: its observe() and _prior() are
            # replaced on the instance by stand-ins that return them.
            dyn = rssm.RSSM(
                {"action": elements.Space(np.float32, (1,))},
                stoch=stoch,
                classes=classes,
                unimix=float(cfg["unimix"]),
                free_nats=float(cfg["free_nats"]),
                name="dyn",
            )
            dyn.observe = lambda *args: (None, None, {"logit": post, "deter": None})
            dyn._prior = lambda deter: prior
            _, _, los, _, _ = dyn.loss(None, None, None, None, True)
            return los

        def run(post, prior):
            return nj.pure(losses)({}, post, prior, create=True, seed=0)[1]

        los = run(post, prior)
        grads = {}
        for key in ("dyn", "rep"):
            g_post, g_prior = jax.grad(lambda p, q, k=key: run(p, q)[k].mean(), (0, 1))(post, prior)
            grads[f"{key}_grad_post"], grads[f"{key}_grad_prior"] = g_post, g_prior
        return {"dyn": los["dyn"], "rep": los["rep"], **grads}

    def case_straight_through(a, cfg):
        logits, weight = jnp.asarray(a["logits"]), jnp.asarray(a["weight"])

        def fn(logits):
            sample = outs.OneHot(logits, float(cfg["unimix"])).sample(jax.random.PRNGKey(0))
            return (sample * weight).sum(), sample

        (_, sample), grad = jax.value_and_grad(fn, has_aux=True)(logits)
        return {"grad": grad, "sample": sample}

    def case_lambda_return(a, cfg):
        keys = ("last", "term", "rew", "val", "boot")
        last, term, rew, val, boot = (jnp.asarray(a[k]) for k in keys)
        ret = agent.lambda_return(last, term, rew, val, boot, float(cfg["disc"]), float(cfg["lam"]))
        return {"ret": ret}

    def case_retnorm(a, cfg):
        def fn(batches):
            norm = utils.Normalize(
                "perc",
                rate=float(cfg["rate"]),
                limit=float(cfg["limit"]),
                perclo=float(cfg["perclo"]),
                perchi=float(cfg["perchi"]),
                debias=bool(cfg["debias"]),
                name="retnorm",
            )
            stats = []
            for batch in batches:
                offset, scale = norm(batch, True)
                stats.append(jnp.stack([norm.lo.read(), norm.hi.read(), offset, scale]))
            return jnp.stack(stats)

        batches = [jnp.asarray(a[f"batch{i}"]) for i in range(int(cfg["num_batches"]))]
        _, stats = nj.pure(fn)({}, batches, create=True, seed=0)
        return {"stats": stats}

    def case_rmsnorm(a, cfg):
        def fn(x):
            return nets.Norm("rms", eps=float(cfg["eps"]), name="norm")(x)

        _, out = nj.pure(fn)({}, jnp.asarray(a["x"]), create=True, seed=0)
        return {"out": out}

    def case_optimizer(a, cfg):
        # Agent._make_opt builds the official optax chain (AGC, RMS scaling, momentum,
        # warm-up schedule); it reads no attribute of self.
        chain = agent.Agent._make_opt(None, **cfg["opt"])
        names = [k for k in a if k.startswith("param_")]
        params = {k: jnp.asarray(a[k]) for k in names}
        state = chain.init(params)
        trajectory = []
        for step in range(int(cfg["steps"])):
            grads = {k: jnp.asarray(a[f"grad{step}_{k}"]) for k in names}
            updates, state = chain.update(grads, state, params)
            params = jax.tree.map(lambda p, u: p + u, params, updates)
            trajectory.append(params)
        return {f"step{i}_{k}": v for i, p in enumerate(trajectory) for k, v in p.items()}

    def case_imag_value(a, cfg):
        """The imagination losses of the official ``imag_loss`` on a given trajectory."""
        bins = symexp_twohot_bins(int(cfg["num_bins"]))

        def fn():
            value = outs.TwoHot(jnp.asarray(a["value_logits"]), bins)
            slowvalue = outs.TwoHot(jnp.asarray(a["slow_logits"]), bins)
            policy = {
                "action": outs.Agg(
                    outs.Normal(jnp.asarray(a["loc"]), jnp.asarray(a["scale"])), 1, jnp.sum
                )
            }
            retnorm = utils.Normalize(
                "perc", rate=0.01, limit=1.0, perclo=5.0, perchi=95.0, debias=False, name="rn"
            )
            valnorm = utils.Normalize("none", rate=0.01, limit=1e-8, name="vn")
            advnorm = utils.Normalize("none", rate=0.01, limit=1e-8, name="an")
            losses, out, mets = agent.imag_loss(
                {"action": jnp.asarray(a["action"])},
                jnp.asarray(a["rew"]),
                jnp.asarray(a["con"]),
                policy,
                value,
                slowvalue,
                retnorm,
                valnorm,
                advnorm,
                update=True,
                contdisc=True,
                slowtar=False,
                horizon=float(cfg["horizon"]),
                lam=float(cfg["lam"]),
                actent=float(cfg["actent"]),
                slowreg=float(cfg["slowreg"]),
            )
            return {
                "policy": losses["policy"],
                "value": losses["value"],
                "ret": out["ret"],
                "weight": mets["weight"],
                "lo": retnorm.lo.read(),
                "hi": retnorm.hi.read(),
            }

        _, result = nj.pure(fn)({}, create=True, seed=0)
        return result

    def case_repl_value(a, cfg):
        """The official replay value loss ``repl_loss`` on a given replay sequence."""
        bins = symexp_twohot_bins(int(cfg["num_bins"]))

        def fn():
            losses, out, _ = agent.repl_loss(
                jnp.asarray(a["last"]),
                jnp.asarray(a["term"]),
                jnp.asarray(a["rew"]),
                jnp.asarray(a["boot"]),
                outs.TwoHot(jnp.asarray(a["value_logits"]), bins),
                outs.TwoHot(jnp.asarray(a["slow_logits"]), bins),
                utils.Normalize("none", rate=0.01, limit=1e-8, name="vn"),
                update=True,
                slowreg=float(cfg["slowreg"]),
                slowtar=False,
                horizon=float(cfg["horizon"]),
                lam=float(cfg["lam"]),
            )
            return {"repval": losses["repval"], "ret": out["ret"]}

        _, result = nj.pure(fn)({}, create=True, seed=0)
        return result

    def case_agc(a, cfg):
        names = [k for k in a if k.startswith("param_")]
        params = {k: jnp.asarray(a[k]) for k in names}
        grads = {k: jnp.asarray(a[f"grad_{k}"]) for k in names}
        clip = opt.clip_by_agc(float(cfg["agc"]))
        clipped, _ = clip.update(grads, clip.init(params), params)
        return {f"clipped_{k}": v for k, v in clipped.items()}

    def case_config(a, cfg):
        """The defaults of ``dreamerv3/configs.yaml`` that the parity table names (needs the
        repository copy: the PyPI package lacks the file); NaN for each when it is absent."""
        import pathlib

        import ruamel.yaml

        path = pathlib.Path(agent.__file__).with_name("configs.yaml")
        if not path.exists():
            return {"present": 0.0}
        c = ruamel.yaml.YAML(typ="safe").load(path.read_text())["defaults"]["agent"]
        scales, optim = c["loss_scales"], c["opt"]
        rssm_, imag, rn = c["dyn"]["rssm"], c["imag_loss"], c["retnorm"]
        values = {
            "loss_rec": scales["rec"],
            "loss_rew": scales["rew"],
            "loss_con": scales["con"],
            "loss_dyn": scales["dyn"],
            "loss_rep": scales["rep"],
            "loss_policy": scales["policy"],
            "loss_value": scales["value"],
            "loss_repval": scales["repval"],
            "opt_lr": optim["lr"],
            "opt_agc": optim["agc"],
            "opt_eps": optim["eps"],
            "opt_beta1": optim["beta1"],
            "opt_beta2": optim["beta2"],
            "opt_warmup": optim["warmup"],
            "free_nats": rssm_["free_nats"],
            "unimix": rssm_["unimix"],
            "imag_length": c["imag_length"],
            "horizon": c["horizon"],
            "lam": imag["lam"],
            "actent": imag["actent"],
            "slowreg": imag["slowreg"],
            "repl_slowreg": c["repl_loss"]["slowreg"],
            "slowvalue_rate": c["slowvalue"]["rate"],
            "retnorm_rate": rn["rate"],
            "retnorm_limit": rn["limit"],
            "retnorm_perclo": rn["perclo"],
            "retnorm_perchi": rn["perchi"],
            "policy_minstd": c["policy"]["minstd"],
            "policy_maxstd": c["policy"]["maxstd"],
            "value_bins": c["value"]["bins"],
            "reward_bins": c["rewhead"]["bins"],
        }
        return {"present": 1.0, **{k: float(v) for k, v in values.items()}}

    return {name[5:]: fn for name, fn in locals().items() if name.startswith("case_")}


def main(argv: list[str]) -> int:
    """Runs ``argv = [CASE, INPUT.npz, OUTPUT.npz]``; returns the exit status."""
    import numpy as np

    case, source, target = argv
    with np.load(source) as data:
        arrays = {k: data[k] for k in data.files if k != "config"}
        config = json.loads(str(data["config"])) if "config" in data.files else {}
    cases = _cases()
    if case not in cases:
        print(f"unknown case {case!r}; known: {sorted(cases)}", file=sys.stderr)
        return 2
    result = cases[case](arrays, config)
    np.savez(target, **{k: np.asarray(v, dtype=np.float64) for k, v in result.items()})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
