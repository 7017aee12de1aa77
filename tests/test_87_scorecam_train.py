"""`sarpipe train scorecam CONFIG.yaml -o DIR` and the train_scorecam stage: one operation (the same weights, bit for
bit, from the command, the stage and the function); the weights load as `--method scorecam` and mask pulses; a bad
recipe exits 2 naming its key and line; a folder sarpipe did not write is refused without --overwrite."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

from sarpipe.cli import main  # noqa: E402 - after the torch skip

# a tiny classifier on MiniSAR-like pulses with the chain's default STFT (128 / 32 / hann): a few seconds on 1 thread
TINY = {
    "data": {"sensors": [{"preset": "minisar"}], "nperseg": 128, "hop": 32, "frames": 16},
    "channels": 4,
    "train_samples": 16,
    "validation_samples": 4,
    "steps": 40,
    "batch_size": 4,
    "k_max": 2,
    "representatives_from": 8,
    "tune_pulses": 4,
    "threads": 1,
}


def spec_shape(recipe):
    """(frequency bins, frames) of the recipe's spectrograms (complex pulses: a two-sided STFT of nperseg bins)."""
    return recipe["data"]["nperseg"], recipe["data"]["frames"]


def _recipe(path, data):
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("scorecam_train")
    recipe = _recipe(tmp / "tiny.yaml", TINY)
    run = tmp / "run"
    assert main(["train", "scorecam", str(recipe), "-o", str(run)]) == 0
    return recipe, run


def test_the_command_writes_weights_that_the_method_loads_and_applies(trained, capsys):
    from sarpipe.rfi.methods import create_method
    from sarpipe.rfi.stft import stft
    from sarpipe.spectral.rfi_classifier import RFI_CLASSES, ScoreCAMTrainConfig, labelled_pulse

    _recipe_path, run = trained
    cfg = json.loads((run / "weights" / "config.json").read_text())
    assert cfg["model"] == "scorecam" and cfg["architecture"]["channels"] == TINY["channels"]
    assert cfg["training"]["recipe"]["steps"] == TINY["steps"]
    # the thresholds were chosen on the training seed's pulses, and the method takes them when given none
    tuned = cfg["training"]["tuned"]
    assert {"threshold", "refine_threshold", "refine_pfa"} <= set(tuned)
    method = create_method("scorecam", weights=str(run / "weights"), device="cpu")
    assert method.threshold == tuned["threshold"] and method.refine_pfa is None
    refined = create_method("scorecam", weights=str(run / "weights"), device="cpu", refine_pfa="tuned")
    assert refined.threshold == tuned["refine_threshold"] and refined.refine_pfa == tuned["refine_pfa"]
    general = method._model.general_maps.numpy()
    # the class-general maps travelled with the weights (the buffer starts at zero): averages of min-max normalised
    # maps, so in [0, 1]; a class's map may be zero (no channel raises a class this tiny net never picks)
    assert general.shape == (len(RFI_CLASSES), *spec_shape(TINY))
    assert np.all((general >= 0) & (general <= 1 + 1e-6)) and general.max() > 0
    # pulses the training never saw (past its validation samples)
    dcfg = ScoreCAMTrainConfig.model_validate(TINY).data
    pulses = np.stack([sum(labelled_pulse(dcfg, "validation", i)[:2]) for i in range(100, 108)])
    spec = stft(pulses, dcfg.stft_params())
    masks, present = method.masks(spec)
    assert masks.shape == spec.shape and masks.dtype == bool
    assert present.shape == (8, len(RFI_CLASSES)) and not present[:, 0].any()
    # a pulse with no RFI kind called present keeps every bin
    assert not masks[~present.any(1)].any()
    # the refinement only removes cells from the paper-form mask at the same threshold
    same = create_method("scorecam", weights=str(run / "weights"), device="cpu", threshold=method.threshold)
    plain = same.masks(spec)[0]
    fine = create_method(
        "scorecam", weights=str(run / "weights"), device="cpu", threshold=method.threshold, refine_pfa=0.01
    ).masks(spec)[0]
    assert not (fine & ~plain).any()
    # the same folder again: the finished run of this recipe is found, nothing is retrained or replaced
    before = (run / "weights" / "model.safetensors").read_bytes()
    capsys.readouterr()
    assert main(["train", "scorecam", str(_recipe_path), "-o", str(run)]) == 0
    assert "found the finished run" in capsys.readouterr().err
    assert (run / "weights" / "model.safetensors").read_bytes() == before


def test_the_stage_and_the_function_give_the_commands_weights(trained, tmp_path):
    from sarpipe.pipeline.registry import REGISTRY
    from sarpipe.spectral.rfi_classifier import train_scorecam
    from sarpipe.spectral.scorecam_training import TrainScoreCAMParams

    recipe, run = trained
    assert REGISTRY.get("train_scorecam").params_model() is TrainScoreCAMParams
    pipeline = tmp_path / "train.yaml"
    pipeline.write_text(
        yaml.safe_dump(
            {
                "name": "train",
                "output_dir": str(tmp_path / "out"),
                "steps": [{"name": "train", "stage": "train_scorecam", "params": {"config_file": str(recipe)}}],
            }
        )
    )
    assert main(["run", str(pipeline), "-q"]) == 0
    want = (run / "weights" / "model.safetensors").read_bytes()
    assert (tmp_path / "out" / "train" / "weights" / "model.safetensors").read_bytes() == want
    result = train_scorecam(recipe, tmp_path / "direct")
    assert not result["reused"] and (tmp_path / "direct" / "weights" / "model.safetensors").read_bytes() == want


def test_a_recipe_with_an_unknown_key_exits_2_naming_the_key_and_line(tmp_path, capsys):
    bad = dict(TINY, learning_rate=1e-3)  # the recipe's key is lr
    recipe = _recipe(tmp_path / "bad.yaml", bad)
    line = 1 + [ln.split(":")[0] for ln in recipe.read_text().splitlines()].index("learning_rate")
    assert main(["train", "scorecam", str(recipe), "-o", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert f"bad.yaml:{line}:" in err and "learning_rate" in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_a_foreign_folder_is_refused_unless_overwrite(tmp_path, capsys):
    recipe = _recipe(tmp_path / "tiny.yaml", dict(TINY, steps=2, train_samples=4))
    run = tmp_path / "run"
    run.mkdir()
    (run / "notes.txt").write_text("mine")
    assert main(["train", "scorecam", str(recipe), "-o", str(run)]) == 2
    err = capsys.readouterr().err
    assert "--output" in err and "--overwrite" in err and "Traceback" not in err
    assert (run / "notes.txt").read_text() == "mine"
    assert main(["train", "scorecam", str(recipe), "-o", str(tmp_path)]) == 2  # would hold the recipe: never
    assert recipe.is_file()
    assert main(["train", "scorecam", str(recipe), "-o", str(run), "--overwrite"]) == 0
    assert not (run / "notes.txt").exists() and (run / "weights" / "model.safetensors").is_file()
    # a run of another recipe is not silently replaced either
    other = _recipe(tmp_path / "other.yaml", dict(TINY, steps=3, train_samples=4))
    assert main(["train", "scorecam", str(other), "-o", str(run)]) == 2
    assert "another recipe" in capsys.readouterr().err
