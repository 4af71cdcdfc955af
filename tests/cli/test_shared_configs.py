"""Every config under configs/shared/ is valid: its options without data, its dry run with it.

The options (methods, variants, sweeps, every training option through
``fairser.training.TrainConfig``) are checked here always; the full ``fairser run --dry-run``
(corpora, splits, frontend) runs for every config whose corpora ../shared/data holds, and
skips cleanly without it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fairser.cli import main
from fairser.experiments import RECOMMENDED, default_backend, load_config
from fairser.experiments.planning import check_config

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs" / "shared").glob("*.yaml"))


def test_the_documented_configs_exist():
    names = {p.name for p in CONFIGS}
    assert {"recommended.yaml", "recommended_casia.yaml", "recommended_emodb.yaml",
            "sweep_alpha_beta.yaml", "sweep_levers.yaml", "multiclass_casia.yaml",
            "multiclass_ased.yaml"} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_shared_config_options_are_valid(path):
    cfg = load_config(path)
    check_config(cfg, default_backend())  # raises ConfigError on any bad option


def test_the_recipe_is_one_mapping_shared_by_its_checks():
    recipes = {}
    for name in ("recommended", "recommended_casia", "recommended_emodb", "multiclass_casia",
                 "multiclass_ased", "sweep_levers"):
        cfg = load_config(CONFIGS[0].parent / f"{name}.yaml")
        recipes[name] = cfg.variant("recommended")
    assert all(v is not None for v in recipes.values())
    assert len({v.model_dump_json() for v in recipes.values()}) == 1
    # ... and the YAML spelling is fairser.experiments.RECOMMENDED (demo, predict's default)
    assert recipes["recommended"].model_dump() == {
        "name": RECOMMENDED["name"], "method": RECOMMENDED["method"],
        "training": RECOMMENDED["training"]}
    main_cfg = load_config(CONFIGS[0].parent / "recommended.yaml")
    for other in ("recommended_casia", "recommended_emodb"):
        cfg = load_config(CONFIGS[0].parent / f"{other}.yaml")
        same = ("methods", "seeds", "training", "emotions", "features", "source", "task",
                "source_split", "target_split", "bootstrap", "linear_baseline")
        assert all(getattr(cfg, k) == getattr(main_cfg, k) for k in same), other


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_shared_config_dry_run(path, shared_data, capsys):
    cfg = load_config(path)
    roots = [Path(c.root) for c in (cfg.source, *cfg.targets)]
    missing = [r for r in roots if not r.is_dir()]
    if missing:
        pytest.skip(f"{path.name}: corpus folder(s) {missing} not in the shared data")
    with pytest.raises(SystemExit) as info:
        main(["run", str(path), "--dry-run"])
    err = capsys.readouterr().err
    assert info.value.code == 0, err
    assert f"{path.name}: valid;" in " ".join(err.split())
