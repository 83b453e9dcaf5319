"""Download a DQN agent from the Hugging Face Hub into rl-zoo3's log layout, optionally exporting it to ONNX.

::

    python -m sb3_dqn_atari.load_from_hub --repo-id sb3/dqn-BreakoutNoFrameskip-v4 [-f logs] [--env ENV]
        [--exp-id N] [--force] [--onnx [-o exported_models/NAME.onnx]] [--trust-remote-code]

The files land where ``rl_zoo3.load_from_hub`` puts them, so ``python -m rl_zoo3.enjoy --algo dqn --env ENV -f logs``
and our ``evaluate`` / ``export`` work on the folder::

    logs/dqn/<env>_<n>/<env>.zip                  the model (repo file <algo>-<env>.zip, or the repo's only SB3 zip)
    logs/dqn/<env>_<n>/<env>/config.yml           rl-zoo3 hyperparameters (as in the repo)
    logs/dqn/<env>_<n>/<env>/args.yml             rl-zoo3 arguments (written from the env id if the repo has none)
    logs/dqn/<env>_<n>/<env>/env_kwargs.yml       env keyword arguments (when in the repo)
    logs/dqn/<env>_<n>/<env>/vecnormalize.pkl     VecNormalize statistics (when in the repo)
    logs/dqn/<env>_<n>/*.monitor.csv, evaluations.npz      from the repo's train_eval_metrics.zip
    logs/dqn/<env>_<n>/README.md, results.json, *.onnx, replay.mp4, *.png    the rest of the model card's files

``<env>`` is the env id with ``/`` replaced by ``-`` (``ALE/Breakout-v5`` -> ``ALE-Breakout-v5``), as
``huggingface_sb3.EnvironmentName`` does; ``--exp-id 0`` (default) takes the next free run number.

**Checked before anything is placed.** Every file is downloaded into a temporary folder outside ``-f`` and checked
there, laid out in a folder next to the destination and moved into place only when complete; a repo that fails
leaves nothing on disk (not even an empty ``logs/``):

* file names, the repo's and ``train_eval_metrics.zip``'s members: a name with ``..``, an absolute path, a
  backslash or a drive letter refuses the repo (:func:`sb3_dqn_atari.common.trust.check_relative_name`);
* every file as the table of :mod:`sb3_dqn_atari.common.vetting` says (rl-zoo3's yml files: the safe YAML reader and
  the allow-list; ``vec_normalize.pkl``, which ``rl_zoo3.enjoy`` unpickles: plain data only; zips: the member size
  bound; ONNX files), as downloaded, then in the folder as it will be placed (extracted metrics included);
* the model zip's JSON names a DQN-family class; the env id (from ``args.yml``, ``results.json`` or the zip's name)
  imports nothing outside the allow-list.

``--trust-remote-code`` is the only way past the YAML, allow-list and pickle checks (files named unsafely are then
skipped, never written; size bounds and ONNX checks stay). The zip is placed byte for byte; our commands never
unpickle it, but ``rl_zoo3.enjoy`` loads it with SB3's own loader, which does: when the zip's pickles hold more
than plain data (SB3 1.x zips hold pickled functions), a warning says so.

A retired env id (``LunarLander-v2``) is mapped to its successor, with one note (:mod:`sb3_dqn_atari.common.env_ids`),
and the run lands under the new id.

The Hub, the token (optional for public repos), retries and errors: :mod:`sb3_dqn_atari.hub.client`.
"""

from __future__ import annotations

import argparse
import glob
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from sb3_dqn_atari.common.bounded_zip import open_zip
from sb3_dqn_atari.common.env_ids import current_env_id
from sb3_dqn_atari.common.files import move_into_place, staging_dir
from sb3_dqn_atari.common.safe_yaml import plain_data
from sb3_dqn_atari.common.vetting import check_folder_files, read_zoo_file
from sb3_dqn_atari.hub import client
from sb3_dqn_atari.hub.vet import (
    CONFIG_FILES,
    EXTRA_SUFFIXES,
    check_repo_files,
    env_from_files,
    metrics_members,
    vet_download,
)
from sb3_dqn_atari.loading import UserError

if TYPE_CHECKING:
    from huggingface_hub import HfApi

# ----------------------------------------------------------------------------------------------- downloading


@dataclass
class Download:
    """What :func:`download_from_hub` put where."""

    repo_id: str
    revision: str
    run_dir: Path
    zip_path: Path
    env_id: str
    algo: str
    files: list[str]


def choose_model_zip(files: list[str], algo: str | None = None, env_id: str | None = None) -> str:
    """The repo's SB3 model zip: ``<algo>-<env>.zip`` if present, else the only top-level ``*.zip`` (other than
    rl-zoo3's ``train_eval_metrics.zip``). :class:`~sb3_dqn_atari.hub.client.HubError` if there is none or the
    choice is ambiguous."""
    from huggingface_sb3 import ModelName

    zips = [f for f in files if f.endswith(".zip") and "/" not in f and f != client.METRICS_ZIP]
    if env_id is not None:
        for algo_guess in ([algo] if algo else []) + sorted(set(client.ALGO_NAMES.values())):
            if (wanted := ModelName(algo_guess, client.env_folder_name(env_id)).filename) in zips:
                return wanted
    if len(zips) == 1:
        return zips[0]
    if not zips:
        shown = ", ".join(files[:12]) + (", ..." if len(files) > 12 else "") if files else "no files"
        raise client.HubError(f"the repo holds no SB3 model zip ({shown})")
    preferred = [z for z in zips if algo and z.startswith(f"{algo}-")]
    if len(preferred) == 1:
        return preferred[0]
    raise client.HubError(f"the repo holds several zips ({', '.join(zips)}); pass --env (and --algo) to pick one")



def _fetch(
    api: HfApi, repo_id: str, revision: str | None, algo: str | None, env_id: str | None, trust_remote_code: bool,
    retry: client.RetryPolicy, tmp: str,
) -> tuple[str, str, dict[str, Path]]:
    """``(commit, model zip, {file: local path})``: the repo's file names at ``revision`` checked, its model zip
    chosen, and the files worth having downloaded into ``tmp`` (``HfApi.snapshot_download`` of that commit)."""
    info = client.with_retries(lambda: api.model_info(repo_id, revision=revision), "read", repo_id, api.endpoint, retry)
    sha = str(info.sha or revision or "main")
    files, skipped = check_repo_files(repo_id, sorted(s.rfilename for s in (info.siblings or [])), trust_remote_code)
    if skipped:
        warnings.warn(f"{repo_id}: skipped {len(skipped)} file(s) whose names are not plain relative paths "
                      f"({', '.join(repr(n) for n in skipped[:3])})", UserWarning, stacklevel=3)
    zip_name = choose_model_zip(files, algo, env_id)
    wanted = [zip_name]
    wanted += [f for f in files if f in CONFIG_FILES or f == client.METRICS_ZIP]
    wanted += [f for f in files if "/" not in f and f.endswith(EXTRA_SUFFIXES) and f not in wanted]
    patterns = [glob.escape(name) for name in wanted]
    snapshot = client.with_retries(
        lambda: api.snapshot_download(repo_id, revision=sha, allow_patterns=patterns, local_dir=tmp),
        "download from",
        repo_id,
        api.endpoint,
        retry,
    )
    local = {name: Path(snapshot) / name for name in wanted}
    missing = [name for name in wanted if not local[name].is_file()]
    if missing:
        raise client.HubError(f"{repo_id}@{sha[:12]}: the download lacks {', '.join(missing[:3])}")
    return sha, zip_name, local


def _stage(staged: Path, local: dict[str, Path], download: Download, zip_name: str, trust_remote_code: bool) -> None:
    """Lay the downloaded files out in ``staged`` as rl-zoo3 does (module docstring), then check them as placed."""
    repo_id, env_name = download.repo_id, client.env_folder_name(download.env_id)
    config_dir = staged / env_name
    config_dir.mkdir()
    shutil.copyfile(local[zip_name], staged / f"{env_name}.zip")
    for repo_file, local_name in CONFIG_FILES.items():
        if repo_file in local:
            shutil.copyfile(local[repo_file], config_dir / local_name)
    if "args.yml" not in local:  # rl-zoo3's enjoy and our loaders read the env id from it
        env_kwargs = None
        if "env_kwargs.yml" in local:
            source = f"{repo_id}/env_kwargs.yml"
            env_kwargs = read_zoo_file(local["env_kwargs.yml"], trust_remote_code, source) or None
        args = {"algo": download.algo, "env": download.env_id, "env_kwargs": env_kwargs,
                "source": f"hf://{repo_id}@{download.revision}"}
        (config_dir / "args.yml").write_text(yaml.safe_dump(plain_data(args), sort_keys=False))
    if client.METRICS_ZIP in local:
        with open_zip(local[client.METRICS_ZIP]) as archive:
            for member in metrics_members(archive, f"{repo_id}/{client.METRICS_ZIP}"):
                archive.extract(member, staged)  # a plain relative name: at staged/name
    for name in download.files:
        if name != zip_name and name not in CONFIG_FILES and name != client.METRICS_ZIP:
            shutil.copyfile(local[name], staged / name)
    # as it will be placed (the extracted metrics too); its yml files were checked above
    check_folder_files(staged, trust_remote_code)


def download_from_hub(
    repo_id: str,
    folder: str | Path = "logs",
    env_id: str | None = None,
    exp_id: int = 0,
    algo: str | None = None,
    revision: str | None = None,
    force: bool = False,
    retry: client.RetryPolicy | None = None,
    progress: bool = True,
    trust_remote_code: bool = False,
) -> Download:
    """Download ``repo_id`` into ``folder/<algo>/<env>_<exp_id>/`` (rl-zoo3's layout; see the module docstring).

    Every file is checked before anything is placed (:func:`vet_download`, then the files of the staged folder);
    a repo that fails leaves nothing under ``folder``. Nothing is unpickled.
    """
    from huggingface_hub import HfApi
    from huggingface_hub.utils import disable_progress_bars, enable_progress_bars
    from rl_zoo3.utils import get_latest_run_id

    retry = retry or client.RetryPolicy()
    if exp_id < 0:
        raise UserError("--exp-id must be 0 (the next free number) or a positive run number")
    # the token: HF_TOKEN, else the one `hf auth login` stored, if any; each call checks repo_id (validate_repo_id)
    api = HfApi(endpoint=client.hub_endpoint())
    if not progress:
        disable_progress_bars()
    try:
        with tempfile.TemporaryDirectory(prefix="sb3-hub-download-") as tmp:  # outside folder: nothing there yet
            sha, zip_name, local = _fetch(api, repo_id, revision, algo, env_id, trust_remote_code, retry, tmp)
            cls = vet_download(repo_id, local, zip_name, trust_remote_code)
            algo = algo or client.algo_name(cls.__name__)
            env_id = env_id or env_from_files(local, zip_name, repo_id, trust_remote_code)
            if env_id is None:
                raise client.HubError(f"{repo_id} does not record its environment; pass --env ENV_ID")
            env_id = current_env_id(env_id)
            env_name = client.env_folder_name(env_id)
            log_path = Path(folder) / algo
            if exp_id == 0:
                exp_id = get_latest_run_id(str(log_path), env_name) + 1
            run_dir = log_path / f"{env_name}_{exp_id}"
            download = Download(repo_id, sha, run_dir, run_dir / f"{env_name}.zip", env_id, algo, list(local))
            with staging_dir(run_dir) as staged:
                _stage(staged, local, download, zip_name, trust_remote_code)
                move_into_place(staged, run_dir, force=force)
    finally:
        if not progress:
            enable_progress_bars()
    return download


def pull_command(args: argparse.Namespace) -> Download:
    """``python -m sb3_dqn_atari.load_from_hub``: the repo its arguments name, downloaded (and exported to ONNX)."""
    repo_id = args.repo_id
    if repo_id is None:
        if args.env is None:
            raise UserError("pass --repo-id NAMESPACE/NAME (or --env ENV with -orga ORG)")
        from huggingface_sb3 import ModelName, ModelRepoId

        name = args.repo_name or ModelName(args.algo or "dqn", client.env_folder_name(args.env))
        repo_id = ModelRepoId(args.organization, name)
    policy = client.retry_policy(args)
    print(f"Downloading {repo_id} from {client.hub_endpoint()}")
    result = download_from_hub(
        repo_id,
        args.folder,
        env_id=args.env,
        exp_id=args.exp_id,
        algo=args.algo,
        revision=args.revision,
        force=args.force,
        retry=policy,
        progress=not args.quiet,
        trust_remote_code=args.trust_remote_code,
    )
    print(f"Saved {repo_id}@{result.revision[:12]} to {result.run_dir} ({result.zip_path.name}, env {result.env_id})")
    print(f"  enjoy:    python -m rl_zoo3.enjoy --algo {result.algo} --env {result.env_id} -f {args.folder}")
    print(f"  evaluate: python -m sb3_dqn_atari.evaluate {result.run_dir}")
    if args.onnx:
        import torch

        from sb3_dqn_atari.loading import load_agent
        from sb3_dqn_atari.onnx.export import export_and_report

        torch.set_num_threads(1)
        model, source = load_agent(result.run_dir, device="cpu", trust_remote_code=args.trust_remote_code)
        report = export_and_report(model, args.onnx_output, source, not args.quiet, preprocessing=args.preprocessing)
        print(f"wrote {report.path}; play it: python -m sb3_dqn_atari.play {report.path}")
    else:
        print(f"  export:   python -m sb3_dqn_atari.export {result.run_dir}")
    return result
