"""Share a DQN agent on the Hugging Face Hub: model zip, verified ONNX, configs, paper-protocol results, replay
video, learning curve and a model card, uploaded in one commit.

::

    # an rl-zoo3 run (logs/dqn/BreakoutNoFrameskip-v4_1), as rl_zoo3.push_to_hub takes it
    python -m sb3_dqn_atari.push_to_hub -f logs --algo dqn --env BreakoutNoFrameskip-v4 [--exp-id 1] \\
        --repo-id ORG/dqn-BreakoutNoFrameskip-v4
    # or a model zip / run folder directly
    python -m sb3_dqn_atari.push_to_hub logs/dqn/BreakoutNoFrameskip-v4_1 --repo-id ORG/NAME
    # build the folder only, nothing uploaded (no token needed)
    python -m sb3_dqn_atari.push_to_hub MODEL --env BreakoutNoFrameskip-v4 --dry-run hub/dqn-Breakout

What the repo gets (names as rl-zoo3's ``push_to_hub`` writes them, so ``rl_zoo3.load_from_hub`` and our
:mod:`sb3_dqn_atari.load_from_hub` read it):

* ``<algo>-<env>.zip``: the model zip, byte for byte;
* ``<algo>-<env>.onnx``: the ONNX export of :mod:`sb3_dqn_atari.export`, verified against PyTorch (100% action
  agreement required, its report in the file's metadata);
* ``config.yml``, ``args.yml``, ``env_kwargs.yml``: copied as rl-zoo3 wrote them (for a bare zip, written from
  what the export found: the env id and, for Atari, the NatureAtariWrapper/frame-stack preprocessing);
* ``results.json``: Atari games: the paper's evaluation protocol (:mod:`sb3_dqn_atari.evaluation`: 1–30 no-op
  starts, ε = 0.05, 5-minute cap, raw score over all lives; ``--episodes`` of them, the paper used 30), with the
  keys huggingface_sb3 writes (``mean_reward``, ``std_reward``, ...); other envs: ``--episodes`` greedy episodes
  (SB3 ``evaluate_policy``);
* ``replay.mp4``: the first evaluation episode (raw screens at 60 Hz), at most ``--video-length`` agent steps;
* ``learning_curve.png`` (:mod:`sb3_dqn_atari.plot`) and ``train_eval_metrics.zip`` (Monitor and evaluation
  files) when the run folder has training logs;
* ``README.md``: Hub model-index metadata (``library_name: stable-baselines3``, tags, ``mean_reward`` "X +/- Y"
  as huggingface_sb3's ``generate_metadata``) and how to download, evaluate and run the agent, ONNX included.

The upload (``huggingface_hub.HfApi``): ``create_repo(exist_ok=True)`` first, so that a missing token or
permission shows before minutes of evaluation, then one commit with every file (``upload_folder``); the token, the
Hub, retries and errors as :mod:`sb3_dqn_atari.hub.client` says. The folder is built in a temporary directory
(``--dry-run DIR``: moved to ``DIR`` only when complete).

The run folder is checked before anything in it is used (:func:`sb3_dqn_atari.common.vetting.vet_run_folder`: rl-zoo3's
YAML files with the safe reader and the allow-list, zip member sizes, ONNX files), and the zip is loaded without
unpickling (:mod:`sb3_dqn_atari.loading`), unless ``--trust-remote-code`` is given.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from sb3_dqn_atari.atari.envs import is_atari
from sb3_dqn_atari.common.errors import UserError, arguments
from sb3_dqn_atari.common.files import move_into_place, staging_dir
from sb3_dqn_atari.common.safe_yaml import plain_data
from sb3_dqn_atari.common.vetting import ZOO_FILES, read_zoo_file
from sb3_dqn_atari.evaluation.report import check_protocol_args
from sb3_dqn_atari.hub.card import CURVE_FILE, RepoFolder, write_model_card
from sb3_dqn_atari.hub.client import (
    METRICS_ZIP,
    RetryPolicy,
    algo_name,
    env_folder_name,
    hub_endpoint,
    hub_token,
    retry_policy,
    with_retries,
)
from sb3_dqn_atari.hub.evaluate import PushOptions, evaluate_atari, evaluate_other
from sb3_dqn_atari.loading import ModelSource, algorithm_class, read_zip_data, resolve_model

if TYPE_CHECKING:
    from huggingface_hub import HfApi
    from stable_baselines3.common.base_class import BaseAlgorithm

    from sb3_dqn_atari.onnx.export import ExportReport



# ------------------------------------------------------------------------------------------------- locating


def locate_model(
    model: str | None,
    folder: str | None,
    algo: str,
    env_id: str | None,
    exp_id: int,
    load_best: bool = False,
    trust_remote_code: bool = False,
) -> ModelSource:
    """The model to push: a zip / run folder given directly, or rl-zoo3's ``folder/algo/<env>_<exp_id>``
    (``exp_id`` 0: the latest run), as ``rl_zoo3.push_to_hub`` finds it; its files checked
    (:func:`sb3_dqn_atari.loading.resolve_model`). ``load_best``: the run's ``best_model.zip`` (the evaluation
    callback's best), whichever way the run folder was named; a zip given directly is refused with it."""
    from rl_zoo3.utils import get_latest_run_id

    if model is not None:
        if not load_best:
            return resolve_model(model, env_id, trust_remote_code)
        if Path(model).is_file():
            raise UserError(f"--load-best takes a run folder (logs/dqn/Env_1), not the zip {model}: drop --load-best")
        return _best_model(Path(model), env_id, trust_remote_code)
    if folder is None or env_id is None:
        raise UserError("pass a MODEL (zip or run folder), or -f LOG_FOLDER with --env ENV_ID (and --algo, --exp-id)")
    log_path = Path(folder) / algo
    env_name = env_folder_name(env_id)
    if exp_id == 0:
        exp_id = get_latest_run_id(str(log_path), env_name)
        if exp_id == 0:
            raise UserError(f"no run of {env_id} in {log_path} (expected {log_path}/{env_name}_1/)")
    run_dir = log_path / f"{env_name}_{exp_id}" if exp_id > 0 else log_path
    if not run_dir.is_dir():
        raise UserError(f"no such run folder: {run_dir}")
    if load_best:
        return _best_model(run_dir, env_id, trust_remote_code)
    return resolve_model(run_dir, env_id, trust_remote_code)


def _best_model(run_dir: Path, env_id: str | None, trust_remote_code: bool) -> ModelSource:
    """``run_dir/best_model.zip``, after the run folder's files are checked as for the folder itself."""
    resolve_model(run_dir, env_id, trust_remote_code)
    best = run_dir / "best_model.zip"
    if not best.is_file():
        raise UserError(f"{run_dir} holds no best_model.zip (written by the run's evaluations): drop --load-best")
    return resolve_model(best, env_id, trust_remote_code)


def _zoo_config(source: ModelSource, trust_remote_code: bool) -> tuple[Path | None, dict[str, Any]]:
    """rl-zoo3's config folder of the run (``<run>/<env>/`` holding args.yml and config.yml), and the env_kwargs
    its args.yml records."""
    found = sorted(source.run_dir.glob("*/args.yml")) if source.run_dir is not None else []
    if not found:
        return None, {}
    env_kwargs = read_zoo_file(found[0], trust_remote_code).get("env_kwargs") or {}
    if not isinstance(env_kwargs, dict):
        raise UserError(f"{found[0]}: env_kwargs is not a mapping")
    return found[0].parent, dict(env_kwargs)


# ---------------------------------------------------------------------------------------------- the folder


def _generated_config(report: ExportReport, model: BaseAlgorithm) -> dict[str, Any]:
    """rl-zoo3 ``config.yml`` entries for a bare zip, from what the export found (preprocessing, frame stack)."""
    from sb3_dqn_atari.atari.spec import NATURE_WRAPPER, WRAPPER_ARGS, PreprocessingSpec

    policy = type(model.policy).__name__
    config: dict[str, Any] = {"policy": "MlpPolicy" if policy in ("DQNPolicy", "QRDQNPolicy") else policy}
    spec = PreprocessingSpec.from_json(report.metadata["preprocessing"])
    if spec.wrapper == NATURE_WRAPPER:  # the wrapper's arguments from the spec's fields
        kwargs = {arg: getattr(spec, name) for arg, name in WRAPPER_ARGS[NATURE_WRAPPER].items() if name}
        config["env_wrapper"] = [{"sb3_dqn_atari.zoo.NatureAtariWrapper": kwargs}]
    frame_stack = int(report.metadata.get("frame_stack", "1"))
    if frame_stack > 1:
        config["frame_stack"] = frame_stack
    return config


def _write_zoo_files(
    folder: Path, config_dir: Path | None, config: dict[str, Any], algo: str, env_id: str, env_kwargs: dict[str, Any]
) -> None:
    """rl-zoo3's ``config.yml``, ``args.yml`` and ``env_kwargs.yml``: copied from the run's config folder, the
    missing ones written (``config`` for ``config.yml``), so that ``rl_zoo3.load_from_hub`` reads the repo."""
    copied = {n: config_dir / n for n in ZOO_FILES if config_dir is not None and (config_dir / n).is_file()}
    for config_name, path in copied.items():
        shutil.copyfile(path, folder / config_name)
    header = "# written by sb3_dqn_atari.push_to_hub: the model came without rl-zoo3's files\n"
    if "config.yml" not in copied:
        (folder / "config.yml").write_text(header + yaml.safe_dump(config, sort_keys=True))
    if "args.yml" not in copied:
        args = {"algo": algo, "env": env_id, "env_kwargs": env_kwargs or None}
        (folder / "args.yml").write_text(header + yaml.safe_dump(plain_data(args), sort_keys=False))
    if "env_kwargs.yml" not in copied:  # rl-zoo3's push_to_hub writes it from args.yml's env_kwargs
        (folder / "env_kwargs.yml").write_text(yaml.dump(plain_data(env_kwargs)))


def build_repo_folder(
    model: BaseAlgorithm,
    source: ModelSource,
    env_id: str,
    folder: Path,
    repo_id: str,
    algo: str,
    options: PushOptions,
) -> RepoFolder:
    """Write every file of the repo into the (empty) ``folder``, the model card last; see the module docstring."""
    from huggingface_sb3 import ModelName

    from sb3_dqn_atari.atari.spec import PreprocessingSpec
    from sb3_dqn_atari.onnx.export import export_and_report, record_evaluation

    name = ModelName(algo, env_folder_name(env_id))
    model_file, onnx_file = name.filename, f"{name}.onnx"
    shutil.copyfile(source.zip_path, folder / model_file)
    config_dir, env_kwargs = _zoo_config(source, options.trust_remote_code)
    report = export_and_report(model, folder / onnx_file, source, options.progress)  # notes, verification printed
    _write_zoo_files(folder, config_dir, _generated_config(report, model), algo, env_id, env_kwargs)
    if is_atari(env_id):
        spec = PreprocessingSpec.from_json(report.metadata["preprocessing"])
        evaluation = evaluate_atari(model, env_id, folder, options, model_file, spec)
    else:
        frame_stack = int(source.hyperparams.get("frame_stack") or 1)
        evaluation = evaluate_other(model, env_id, folder, options, model_file, env_kwargs, frame_stack)
    record_evaluation(folder / onnx_file, evaluation.results, evaluation.description)  # the score in the ONNX file
    if source.run_dir is not None:
        _write_training_files(source.run_dir, folder, options.trust_remote_code)
    built = RepoFolder(model_file, onnx_file, evaluation, report)
    from_zoo = config_dir is not None
    write_model_card(folder, model, env_id, repo_id, algo, built, source.hyperparams, env_kwargs, from_zoo)
    built.files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    return built


def _write_training_files(run_dir: Path, folder: Path, trust_remote_code: bool = False) -> None:
    """rl-zoo3's ``train_eval_metrics.zip`` (Monitor, evaluation and ``episodes.csv`` files) and
    ``learning_curve.png``, when the run folder has such files."""
    from sb3_dqn_atari.evaluation.curve_plot import plot_runs
    from sb3_dqn_atari.evaluation.curves import EPISODES_FILE, MONITOR_GLOB, load_run

    logs = sorted(run_dir.glob(MONITOR_GLOB)) + sorted(run_dir.glob("evaluations*.npz"))
    logs += sorted(run_dir.glob("evaluations*.csv")) + sorted(run_dir.glob(EPISODES_FILE))
    if not logs:
        return
    with zipfile.ZipFile(folder / METRICS_ZIP, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for log in logs:
            archive.write(log, arcname=log.name)
    try:
        run = load_run(run_dir, trust_remote_code)
    except UserError as exc:
        print(f"note: no learning curve: {exc}")
        return
    if run.train_raw is not None or run.evals:
        plot_runs([run], folder / CURVE_FILE)


# ------------------------------------------------------------------------------------------------ uploading


def _check_args(args: argparse.Namespace) -> None:
    check_protocol_args(args)
    if args.video_length < 0:
        raise UserError("--video-length must be 0 (no video) or positive")
    if args.dry_run is not None and args.dry_run.exists() and any(args.dry_run.iterdir()):
        raise UserError(f"{args.dry_run} exists and is not empty; pass a new folder to --dry-run")


def _create_repo(repo_id: str, private: bool, token: str, retry: RetryPolicy) -> HfApi:
    """``create_repo(exist_ok=True)`` (an existing repo is fine, and keeps its visibility); the client that made it."""
    from huggingface_hub import HfApi

    api = HfApi(endpoint=hub_endpoint(), token=token)  # each call checks repo_id (huggingface_hub's validate_repo_id)
    if "/" not in repo_id:
        raise UserError(f"--repo-id {repo_id!r} should be NAMESPACE/NAME (your user or organisation name first)")

    def create() -> Any:
        return api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")

    url = with_retries(create, "create", repo_id, api.endpoint, retry)
    print(f"Repository {url} ready")
    return api


def push_command(args: argparse.Namespace) -> RepoFolder:
    """``python -m sb3_dqn_atari.push_to_hub``: locate and load the model, build the repo folder, upload it in one
    commit with ``HfApi.upload_folder`` (or, with ``--dry-run``, leave it in a folder)."""
    from huggingface_sb3 import ModelName, ModelRepoId

    policy = retry_policy(args)
    _check_args(args)
    source = locate_model(
        args.model, args.folder, args.algo, args.env, args.exp_id, args.load_best, args.trust_remote_code
    )
    env_id = source.env_id  # args.env, else the recorded one (a retired id mapped: sb3_dqn_atari.common.env_ids)
    if env_id is None:
        raise UserError("pass --env ENV_ID: a bare SB3 zip does not record its environment")
    final = args.dry_run
    token = hub_token() if final is None else None
    # rl-zoo3's --algo for a run folder; the class that saved the zip otherwise (read as plain text)
    algo = args.algo if args.model is None else algo_name(algorithm_class(read_zip_data(source.zip_path)).__name__)
    if args.repo_id is None and final is None and args.organization is None:
        raise UserError("pass --repo-id NAMESPACE/NAME (or -orga NAMESPACE)")
    repo_name = args.repo_name or ModelName(algo, env_folder_name(env_id))
    repo_id = args.repo_id or ModelRepoId(args.organization or "ORG", repo_name)
    api = _create_repo(repo_id, args.private, token, policy) if token is not None else None

    import torch

    from sb3_dqn_atari.loading import load_agent

    if args.device == "cpu":
        torch.set_num_threads(1)
    model, _ = load_agent(source.zip_path, device=args.device, env_id=env_id, trust_remote_code=args.trust_remote_code)
    names = ("episodes", "protocol", "seed", "epsilon", "max_frames", "video_length", "trust_remote_code")
    options = PushOptions(progress=not args.quiet, **arguments(args, *names))
    with staging_dir(final) if final is not None else tempfile.TemporaryDirectory(prefix="sb3-hub-") as staged_name:
        staged = Path(staged_name)
        built = build_repo_folder(model, source, env_id, staged, repo_id, algo, options)
        r = built.evaluation.results
        print(f"evaluation ({r['protocol']}, {r['n_eval_episodes']} episodes): {r['mean_reward']:.2f} +/- "
              f"{r['std_reward']:.2f}")
        if api is None:
            if final.exists():
                final.rmdir()  # empty (checked above)
            move_into_place(staged, final)
            print(f"wrote {len(built.files)} files to {final} (dry run: nothing uploaded)")
            for name in built.files:
                print(f"  {name}")
            return built
        message = args.commit_message or f"Upload {type(model).__name__} agent playing {env_id} (sb3-dqn-atari)"
        info = with_retries(
            lambda: api.upload_folder(folder_path=staged, repo_id=repo_id, commit_message=message, repo_type="model"),
            "push to",
            repo_id,
            api.endpoint,
            policy,
        )
        print(f"pushed {len(built.files)} files to {repo_id} in one commit: {info.commit_url}")
        return built
