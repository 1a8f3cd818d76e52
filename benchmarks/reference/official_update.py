"""Times one learner update of the official DreamerV3 (JAX) on a synthetic batch; prints JSON.

Executed by the reference environment's interpreter (``benchmarks/reference/setup.sh
--repo ...``: the official ``dreamerv3/configs.yaml`` is needed), never imported by
torchrl-psp's: JAX and the official packages are imported inside :func:`main` only.
``benchmarks/official_update_cost.py`` runs it as a subprocess, next to our learner.

The agent is built as the official ``dreamerv3/main.py`` builds it (``make_agent``):
the ``defaults`` of ``configs.yaml`` updated with ``dmc_vision`` and the size
(``size1m``, ``size12m``, ...), then ``--batch_size``, ``--batch_length``,
``--jax.platform cpu``, ``--jax.compute_dtype float32``, and the agent options
``jax.precompile=False`` (the train step is then compiled here, by the agent's own
``_compile_train``, and timed) and ``jax.profiler=False``.
The observation space is the one of ``embodied.envs.dmc.DMC`` with ``proprio=False``
(``image`` 64x64x3 uint8, ``reward``, ``is_first``, ``is_last``, ``is_terminal``), the
action space a continuous ``action`` in [-1, 1] (6 dimensions: cheetah-run's). The batch
has the layout of the official replay stream (``embodied/run/train.py``: the agent's
``spaces``, ``batch_length + replay_context`` steps, a ``seed``), filled with random
numbers; the carry is ``agent.init_train`` and then the one each update returns, as in
the official training loop. One update is ``agent.train(carry, batch)`` (the jitted
``Agent.train`` of ``dreamerv3/agent.py``: world model, actor and critic losses, their
gradients and the optimiser step, plus the policy-parameter copy the official training
loop also pays), timed until its parameters are ready.

Usage::

    REFERENCE_PYTHON benchmarks/reference/official_update.py --size size1m --threads 1 \
        [--batch 16] [--seq 64] [--action-dim 6] [--rounds 3] [--strided]

``--threads N`` sets ``XLA_FLAGS`` (appended to the environment's) before JAX starts:
``--xla_force_host_platform_device_count=1``, and for one thread
``--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1`` (the flags of
``../shared/TORCHRL_NOTES.md``); pin the process to as many cores (``taskset``) too.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path


def xla_thread_flags(threads: int) -> str:
    """The ``XLA_FLAGS`` entries for ``threads`` CPU threads.

    Examples:
        >>> xla_thread_flags(1).split()[1]
        '--xla_cpu_multi_thread_eigen=false'
    """
    if threads < 1:
        raise ValueError(f"threads must be a positive integer; got {threads}.")
    flags = ["--xla_force_host_platform_device_count=1"]
    if threads == 1:
        flags += ["--xla_cpu_multi_thread_eigen=false", "intra_op_parallelism_threads=1"]
    else:
        flags += [f"intra_op_parallelism_threads={threads}"]
    return " ".join(flags)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", default="size1m", help="a size config of configs.yaml")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seq", type=int, default=64)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--action-dim", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=3, help="timed updates after the first")
    parser.add_argument(
        "--strided",
        action="store_true",
        help="enc/dec.simple.strided=True: stride-2 convolutions, as TorchRL's codec",
    )
    parser.add_argument("--seed", type=int, default=0)
    return parser


def main(argv: list[str] | None = None) -> dict:
    """Builds the official agent, compiles and times its train step; returns the record."""
    args = _parser().parse_args(argv)
    for name in ("threads", "batch", "seq", "image_size", "action_dim", "rounds"):
        if getattr(args, name) < 1:
            raise SystemExit(f"--{name.replace('_', '-')} must be a positive integer.")
    os.environ["XLA_FLAGS"] = " ".join(
        filter(None, [os.environ.get("XLA_FLAGS", ""), xla_thread_flags(args.threads)])
    )
    os.environ["JAX_PLATFORMS"] = "cpu"

    import dreamerv3
    import elements
    import embodied.jax.internal as internal
    import jax
    import numpy as np
    import ruamel.yaml as yaml
    from dreamerv3.agent import Agent

    configs_path = Path(dreamerv3.__file__).parent / "configs.yaml"
    if not configs_path.exists():
        raise FileNotFoundError(
            f"{configs_path} not found: the reference venv was built without the "
            "repository copy; rebuild it with benchmarks/reference/setup.sh --repo PATH "
            "(a copy of danijar/dreamerv3 at f8817c4)."
        )
    configs = yaml.YAML(typ="safe").load(configs_path.read_text())
    if args.size not in configs:
        raise SystemExit(f"unknown size {args.size!r}; {configs_path} has no such config.")
    logdir = tempfile.mkdtemp(prefix="dreamerv3-ref-")
    flags = [
        f"--batch_size={args.batch}",
        f"--batch_length={args.seq}",
        "--jax.platform=cpu",
        "--jax.compute_dtype=float32",
        f"--logdir={logdir}",
        f"--seed={args.seed}",
    ]
    if args.strided:
        flags += ["--agent.enc.simple.strided=True", "--agent.dec.simple.strided=True"]
    config = elements.Config(configs["defaults"])
    for name in ("dmc_vision", args.size):
        config = config.update(configs[name])
    config = elements.Flags(config).parse(flags)

    size = (args.image_size, args.image_size)
    obs_space = {
        "reward": elements.Space(np.float32),
        "is_first": elements.Space(bool),
        "is_last": elements.Space(bool),
        "is_terminal": elements.Space(bool),
        "image": elements.Space(np.uint8, (*size, 3)),
    }
    act_space = {"action": elements.Space(np.float32, (args.action_dim,), -1.0, 1.0)}
    agent_config = elements.Config(
        **config.agent,
        logdir=config.logdir,
        seed=config.seed,
        # Options of embodied.jax.Agent that configs.yaml does not list: compile here
        # (timed), no profiler trace.
        jax=elements.Config(**config.jax, precompile=False, profiler=False),
        batch_size=config.batch_size,
        batch_length=config.batch_length,
        replay_context=config.replay_context,
        report_length=config.report_length,
        replica=0,
        replicas=1,
    )
    start = time.perf_counter()
    agent = Agent(obs_space, act_space, agent_config)
    init_s = time.perf_counter() - start
    with agent.train_mesh:
        start = time.perf_counter()
        agent._compile_train()  # the official precompile step: lower + compile
        compile_s = time.perf_counter() - start
    try:
        flops = float(agent._train.cost_analysis()[0]["flops"])
    except (TypeError, AttributeError, KeyError, IndexError):
        flops = None

    # A random batch in the layout of the official replay stream.
    rng = np.random.default_rng(args.seed)
    B, T = config.batch_size, config.batch_length + config.replay_context
    data = {}
    for key, space in agent.spaces.items():
        shape = (B, T, *space.shape)
        if key == "image":
            data[key] = rng.integers(0, 256, shape, dtype=np.uint8)
        elif key == "is_first":
            data[key] = np.zeros(shape, bool)
            data[key][:, 0] = True
        elif space.dtype == bool:
            data[key] = np.zeros(shape, bool)
        elif key == "action":
            data[key] = rng.uniform(-1, 1, shape).astype(np.float32)
        elif key == "dyn/stoch":  # one-hot samples, as the policy writes them
            classes = shape[-1]
            data[key] = np.eye(classes, dtype=np.float32)[rng.integers(0, classes, shape[:-1])]
        elif key == "consec":
            data[key] = np.zeros(shape, np.int32)
        elif np.issubdtype(space.dtype, np.integer):
            data[key] = rng.integers(0, 256, shape).astype(space.dtype)
        else:
            data[key] = rng.standard_normal(shape).astype(space.dtype)
    batch = internal.device_put(data, agent.train_sharded)

    carry = agent.init_train(B)
    walls, cpus = [], []
    for index in range(args.rounds + 1):
        step = dict(batch, seed=agent._seeds(index, agent.train_mirrored))
        jax.block_until_ready((agent.params, carry))
        start, start_cpu = time.perf_counter(), time.process_time()
        carry, _, _ = agent.train(carry, step)
        jax.block_until_ready((agent.params, carry))
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - start_cpu)

    groups: dict[str, int] = {}
    for key, value in agent.params.items():
        group = key.split("/")[0]
        groups[group] = groups.get(group, 0) + int(np.prod(value.shape))
    model = ("enc", "dyn", "dec", "rew", "con", "pol", "val")
    record = {
        "implementation": "official DreamerV3 (JAX)",
        "size": args.size,
        "strided": args.strided,
        "threads": args.threads,
        "batch": args.batch,
        "seq": args.seq,
        "replay_context": int(config.replay_context),
        "image": args.image_size,
        "action_dim": args.action_dim,
        "init_s": init_s,
        "compile_s": compile_s,
        "first_update_s": walls[0],
        "wall_s": statistics.median(walls[1:]),
        "cpu_s": statistics.median(cpus[1:]),
        "wall_all_s": walls[1:],
        "cpu_all_s": cpus[1:],
        "xla_flops": flops,
        "params": sum(groups[k] for k in model if k in groups),
        "params_world_model": sum(groups.get(k, 0) for k in ("enc", "dyn", "dec", "rew", "con")),
        "params_by_module": groups,
        "jax": jax.__version__,
        "xla_flags": os.environ["XLA_FLAGS"],
        "source": (Path(dreamerv3.__file__).parent.parent / "SOURCE").read_text().strip()
        if (Path(dreamerv3.__file__).parent.parent / "SOURCE").exists()
        else None,
    }
    return record


if __name__ == "__main__":
    result = main()
    sys.stdout.flush()
    print("RESULT " + json.dumps(result), flush=True)
