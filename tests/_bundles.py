"""Result bundles for the dashboard tests, built once per test session.

- :func:`demo_bundle`: ``jne demo --small`` (the real pipeline on simulated responses on the
  fs_LR 32k atlas, about a minute on 2 cores) plus the ``--quick`` simulations. Set
  ``JNE_TEST_BUNDLE`` to an existing bundle to skip the build while developing.
- :func:`variant_bundle`: a copy of a bundle with perturbed JNE / R², a noise-ceiling column and a
  ``cluster`` column, written in seconds (for the compare page and the noise-ceiling panel).

Both are cached in module globals, so every test module of a session shares them.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np

_CACHE: dict = {}


def demo_bundle(tmp_path_factory) -> Path:
    """Path of the small demo bundle with quick simulations (built on first use)."""
    if "demo" in _CACHE:
        return _CACHE["demo"]
    given = os.environ.get("JNE_TEST_BUNDLE")
    if given:
        _CACHE["demo"] = Path(given)
        return _CACHE["demo"]
    from jnecore.cli import main
    from jnecore.simulate import run_simulations

    root = tmp_path_factory.mktemp("bundles")
    out = root / "demo_small"
    # through the command line, as a user would: `jne demo --small`
    code = main(["demo", "--small", "--out", str(out), "--device", "cpu", "--quiet"])
    assert code == 0, f"jne demo --small exited {code}"
    run_simulations(out / "simulations", quick=True, device="cpu")
    _CACHE["demo"] = out
    return out


def variant_bundle(src, out, *, seed: int = 1, name: str = "variant (perturbed copy)", noise_ceiling: bool = True,
                   clusters: int = 5, simulations: bool = False) -> Path:
    """Write a perturbed copy of the bundle at ``src`` to ``out`` (cached by ``out``)."""
    key = ("variant", str(out))
    if key in _CACHE:
        return _CACHE[key]
    from jnecore.bundle import load_bundle, summary_tables, write_bundle

    b = load_bundle(src)
    rng = np.random.default_rng(seed)
    v = b.vertices.copy()
    n = len(v)
    v["jne"] = v["jne"] * np.exp(rng.normal(0.1, 0.15, n))
    v["r2_nonlinear"] = v["r2_nonlinear"] + rng.normal(0, 0.01, n)
    if noise_ceiling:
        # a noise ceiling (%) above the nonlinear R² for most vertices, as with real data
        r2 = np.clip(v["r2_nonlinear"].to_numpy(dtype=float), 0, None)
        v["noise_ceiling"] = np.clip(100 * r2 / rng.uniform(0.6, 1.1, n) + rng.uniform(0, 5, n), 0, 100)
    stimuli = b.stimuli.copy()
    if clusters:
        stimuli["cluster"] = [f"c{int(x):02d}" for x in rng.integers(0, clusters, len(stimuli))]
    ss = np.asarray(b.jne_ss, dtype=np.float32) * np.float32(1.1)
    test = stimuli[stimuli["split"].astype(str) == "test"].reset_index(drop=True)
    tables = summary_tables(v, ss, test[[c for c in ("category", "cluster") if c in test.columns]])
    man = {k: val for k, val in b.manifest.items() if k not in ("tables", "encoders")}
    man["name"] = name
    sims = b.simulations_dir if simulations else None
    out = Path(out)
    if out.exists():
        shutil.rmtree(out)
    write_bundle(out, vertices=v, jne_ss=ss, stimuli=stimuli, manifest=man, tables=tables, simulations=sims)
    _CACHE[key] = out
    return out


def bundle_folder(tmp_path_factory) -> Path:
    """A folder holding a copy of the demo bundle and a perturbed variant: two bundles to compare."""
    if "folder" in _CACHE:
        return _CACHE["folder"]
    demo = demo_bundle(tmp_path_factory)
    root = tmp_path_factory.mktemp("bundle_folder")
    shutil.copytree(demo, root / "a_demo")
    variant_bundle(demo, root / "b_variant")
    _CACHE["folder"] = root
    return root
