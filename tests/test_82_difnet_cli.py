"""`sarpipe train difnet CONFIG.yaml -o DIR` and the train_difnet stage: the weights they write clean a scene with
`rfi clean --method difnet --param weights=DIR/weights`; a bad recipe exits 2 naming its key."""

from __future__ import annotations

import json

import pytest
import yaml

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

from sarpipe.cli import main  # noqa: E402 - after the torch skip

# a few steps of a tiny network on MiniSAR-like spectrograms with the chain's default STFT (128 / 32 / hann)
TINY = {
    "model": {"channels": 4, "levels": 1, "window": 4, "heads": 1},
    "data": {
        "sensors": [{"preset": "minisar"}],
        "nperseg": 128,
        "hop": 32,
        "frames": 16,
        "train_samples": 4,
        "validation_samples": 2,
    },
    "optimizer": {"lr": 1e-2, "batch_size": 2, "schedule": "cosine", "warmup_steps": 1},
    "steps": 3,
    "steps_per_epoch": 3,
    "checkpoint_every": 3,
    "log_every": 1,
    "threads": 1,
    "device": "cpu",
}


def _recipe(path, data):
    path.write_text(yaml.safe_dump(data))
    return path


def _scene(tmp_path):
    from sarpipe.model import save_dataset
    from sarpipe.simulate import simulate

    raw = simulate(
        {
            "sensor": {"preset": "minisar", "antenna_length": 12.0},
            "scene": {"n_azimuth": 64, "n_range": 600},
            "targets": [{"range_index": 300, "azimuth_index": 32, "amplitude": 1.0}],
            "noise": {"snr_db": 10},
            "rfi": {"preset": "minisar", "pulses": [[16, 48]]},
            "seed": 3,
        }
    )
    save_dataset(raw, tmp_path / "raw.zarr")
    return tmp_path / "raw.zarr"


def test_train_command_writes_weights_that_rfi_clean_loads(tmp_path, capsys):
    recipe = _recipe(tmp_path / "tiny.yaml", TINY)
    run = tmp_path / "run"
    assert main(["train", "difnet", str(recipe), "-o", str(run)]) == 0
    cfg = json.loads((run / "weights" / "config.json").read_text())
    assert cfg["model"] == "difnet" and cfg["training"]["steps"] == 3
    assert cfg["architecture"] == TINY["model"]
    raw = _scene(tmp_path)
    out = tmp_path / "clean.zarr"
    assert (
        main(["rfi", "clean", str(raw), "-o", str(out), "--method", "difnet", "--param", f"weights={run / 'weights'}"])
        == 0
    ), capsys.readouterr().err
    from sarpipe.model import load_dataset

    cleaned = load_dataset(out, "raw")
    assert cleaned.attrs["processing_history"][-1]["params"]["params"]["weights"] == str(run / "weights")
    # the same folder again resumes (nothing to do) instead of refusing or starting over
    before = (run / "weights" / "model.safetensors").read_bytes()
    assert main(["train", "difnet", str(recipe), "-o", str(run)]) == 0
    assert (run / "weights" / "model.safetensors").read_bytes() == before


def test_train_stage_runs_the_same_operation(tmp_path):
    from sarpipe.models.training import TrainDIFNetParams
    from sarpipe.pipeline.registry import REGISTRY

    assert REGISTRY.get("train_difnet").params_model() is TrainDIFNetParams
    recipe = _recipe(tmp_path / "tiny.yaml", TINY)
    pipeline = tmp_path / "train.yaml"
    pipeline.write_text(
        yaml.safe_dump(
            {
                "name": "train",
                "output_dir": str(tmp_path / "out"),
                "steps": [{"name": "train", "stage": "train_difnet", "params": {"config_file": str(recipe)}}],
            }
        )
    )
    assert main(["run", str(pipeline), "-q"]) == 0
    cfg = json.loads((tmp_path / "out" / "train" / "weights" / "config.json").read_text())
    assert cfg["training"]["steps"] == 3


def test_a_bad_recipe_exits_2_naming_the_key(tmp_path, capsys):
    bad = dict(TINY, optimizer={**TINY["optimizer"], "lr_rate": 1e-3})
    assert main(["train", "difnet", str(_recipe(tmp_path / "bad.yaml", bad)), "-o", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "lr_rate" in err and "bad.yaml" in err and "Traceback" not in err
    bad = dict(TINY, optimizer={**TINY["optimizer"], "schedule": "linear"})
    assert main(["train", "difnet", str(_recipe(tmp_path / "bad2.yaml", bad)), "-o", str(tmp_path / "run")]) == 2
    assert "schedule" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_train_refuses_a_foreign_folder_unless_overwrite(tmp_path, capsys):
    recipe = _recipe(tmp_path / "tiny.yaml", TINY)
    run = tmp_path / "run"
    run.mkdir()
    (run / "notes.txt").write_text("mine")
    assert main(["train", "difnet", str(recipe), "-o", str(run)]) == 2
    err = capsys.readouterr().err
    assert "--output" in err and "--overwrite" in err
    assert (run / "notes.txt").read_text() == "mine"
    assert main(["train", "difnet", str(recipe), "-o", str(tmp_path)]) == 2  # would hold the recipe: never
    assert recipe.is_file()
    assert main(["train", "difnet", str(recipe), "-o", str(run), "--overwrite"]) == 0
    assert not (run / "notes.txt").exists() and (run / "weights" / "model.safetensors").is_file()


def test_weights_from_a_checkpoint_of_a_stopped_run(tmp_path):
    from sarpipe.models.difnet import DIFNetMethod
    from sarpipe.models.training import train_difnet, weights_from_checkpoint

    run = tmp_path / "run"
    recipe = dict(TINY, steps=4, checkpoint_every=2)
    result = train_difnet(recipe, run, progress=False, stop_after=2)
    assert result.weights is None and result.step == 2
    w = weights_from_checkpoint(run, tmp_path / "w")
    m = DIFNetMethod(weights=str(w), device="cpu")
    assert m._bundle.training["steps"] == 2 and "2 steps" in (w / "README.md").read_text()
    state = torch.load(run / "checkpoints" / "step_00000002.pt", weights_only=False)["model"]
    assert all(torch.equal(v, m._model.state_dict()[k]) for k, v in state.items())


def test_rfi_clean_refuses_an_unreadable_flag_with_exit_2(tmp_path, capsys):
    """``--param amp=maybe``: ``bool("maybe")`` would mean amp on; it is refused when the method is built, naming
    the option, with exit 2 and nothing written."""
    raw = _scene(tmp_path)
    out = tmp_path / "c.zarr"
    assert main(["rfi", "clean", str(raw), "-o", str(out), "--method", "difnet", "--param", "amp=maybe"]) == 2
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: --param amp") and "'maybe'" in last and "Traceback" not in err, err
    assert not out.exists() and not list(tmp_path.glob(".c.zarr*"))


@pytest.mark.parametrize("damage", ["truncate", "other-model"])
def test_rfi_clean_refuses_a_damaged_or_foreign_weights_file_with_exit_2(tmp_path, capsys, damage):
    from sarpipe.models.difnet import DIFNet
    from sarpipe.models.torch_method import INPUT_TRANSFORM
    from sarpipe.models.weights import ValidFor, save_weights

    net = DIFNet(**TINY["model"])
    w = tmp_path / "w"
    save_weights(
        w,
        model="difnet" if damage == "truncate" else "unet",
        architecture=TINY["model"],
        state_dict=net.state_dict(),
        valid_for=ValidFor(
            stft={"nperseg": 128, "hop": 32, "window": "hann"},
            range_sampling_rate=(300e6, 400e6),
            chirp_bandwidth=(200e6, 400e6),
        ),
        input_transform=INPUT_TRANSFORM,
        card="# test weights\n",
        tile=[128, 64],
    )
    f = w / "model.safetensors"
    if damage == "truncate":
        f.write_bytes(f.read_bytes()[:-100])
    raw = _scene(tmp_path)
    code = main(
        ["rfi", "clean", str(raw), "-o", str(tmp_path / "c.zarr"), "--method", "difnet", "--param", f"weights={w}"]
    )
    err = capsys.readouterr().err
    assert code == 2, err
    # the weights are opened where the method is built (the announce line may come first): one error line last
    assert err.strip().splitlines()[-1].startswith("error: ") and "Traceback" not in err
    assert "model.safetensors" in err if damage == "truncate" else "'unet'" in err
    assert not (tmp_path / "c.zarr").exists()
