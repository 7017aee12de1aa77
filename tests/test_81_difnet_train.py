"""DIFNet training: data recipe, overfitting a handful of samples, resuming after a kill, the recipe file."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

from sarpipe.errors import InputError
from sarpipe.models.difnet_data import DIFNetDataConfig, make_sample
from sarpipe.models.training import load_train_config, train_difnet
from sarpipe.yamlconf import ConfigError

TINY_DATA = {"nperseg": 16, "hop": 4, "frames": 16, "train_samples": 4, "validation_samples": 4}


def _tiny(**kw):
    cfg = {
        "model": {"channels": 8, "levels": 1, "window": 4, "heads": 1},
        "data": dict(TINY_DATA),
        "optimizer": {"lr": 1e-2, "batch_size": 4},
        "steps": 100,
        "steps_per_epoch": 100,
        "checkpoint_every": 100,
        "log_every": 1,
        "threads": 1,
    }
    cfg.update(kw)
    return cfg


def test_samples_are_seeded_split_and_labelled_by_the_true_mask():
    cfg = DIFNetDataConfig()
    x, y = make_sample(cfg, "train", 7)
    assert x.shape == y.shape == (128, 128) and x.dtype == np.float32
    assert set(np.unique(y)) <= {0.0, 1.0} and 0.01 < y.mean() < 0.6
    x2, y2 = make_sample(cfg, "train", 7)
    assert np.array_equal(x, x2) and np.array_equal(y, y2)
    xv, _ = make_sample(cfg, "validation", 7)
    assert not np.array_equal(x, xv)
    assert not np.array_equal(x, make_sample(cfg.model_copy(update={"seed": 1}), "train", 7)[0])
    # without RFI the label is empty
    free = DIFNetDataConfig(rfi_free_fraction=1.0)
    assert make_sample(free, "train", 0)[1].sum() == 0


def test_sir_controls_how_much_is_rfi():
    weak = DIFNetDataConfig(sir_db=20.0, narrowband_count=1, broadband_count=0)
    strong = DIFNetDataConfig(sir_db=-15.0, narrowband_count=1, broadband_count=0)
    wm = np.mean([make_sample(weak, "train", i)[1].mean() for i in range(6)])
    sm = np.mean([make_sample(strong, "train", i)[1].mean() for i in range(6)])
    assert sm > 2 * wm


def test_valid_for_spans_the_training_sensors():
    cfg = DIFNetDataConfig(sensors=[{"preset": "minisar"}, {"preset": "sentinel1_sm"}])
    vf = cfg.valid_for()
    assert vf.range_sampling_rate == (100e6, 360e6)
    assert vf.chirp_bandwidth == pytest.approx((87.6e6, 300e6))
    assert vf.stft == {"nperseg": 128, "hop": 32, "window": "hann"}
    family = DIFNetDataConfig(
        sensors=[
            {"range_sampling_rate": [50e6, 400e6], "chirp_bandwidth": [40e6, 300e6], "pulse_duration": [1e-6, 40e-6]}
        ]
    )
    assert family.valid_for().range_sampling_rate == (50e6, 400e6)
    x, _ = make_sample(family, "train", 0)
    assert x.shape == (128, 128) and np.isfinite(x).all()
    with pytest.raises(ValueError, match="give a preset or all of"):
        DIFNetDataConfig(sensors=[{"range_sampling_rate": 1e8}])
    with pytest.raises(ValueError, match="low <= high"):
        DIFNetDataConfig(sensors=[{"preset": "minisar", "range_sampling_rate": [4e8, 1e8]}])


def test_recipe_file_is_strict(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text("steps: 20\nmodel:\n  channels: 8\ndata:\n  sir_db: [-10, 0]\n")
    cfg = load_train_config(good)
    assert cfg.steps == 20 and cfg.model.channels == 8 and cfg.data.sir_db == (-10, 0)
    assert cfg.optimizer.lr == 2e-4 and cfg.optimizer.weight_decay == 0.02 and cfg.optimizer.batch_size == 4
    bad = tmp_path / "bad.yaml"
    bad.write_text("steps: 20\nmodel:\n  chanels: 8\n")
    with pytest.raises(ConfigError, match=r"bad.yaml:3:3: model.chanels: unknown key"):
        load_train_config(bad)
    with pytest.raises(ConfigError, match="nperseg must be an even number"):
        train_difnet({"data": {"nperseg": 7}}, tmp_path / "run")
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_overfits_a_handful_of_samples(tmp_path):
    losses = []
    res = train_difnet(_tiny(), tmp_path / "run", on_step=lambda s, loss: losses.append(loss), progress=False)
    assert res.step == 100 and len(losses) == 100
    assert np.mean(losses[-5:]) < np.mean(losses[:1]) / 10, (losses[0], losses[-5:])
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert log[0]["event"] == "start" and log[-1]["event"] == "done"
    assert any(r["event"] == "validation" and 0 <= r["iou"] <= 1 and 0 <= r["pa"] <= 1 for r in log)
    # the trained weights load as the cleanup method, with the STFT they were made for
    from sarpipe.models.difnet import DIFNetMethod

    m = DIFNetMethod(weights=str(res.weights))
    assert m.tile == [16, 16] and m._bundle.valid_for.stft == {"nperseg": 16, "hop": 4, "window": "hann"}
    assert "PA" in (res.weights / "README.md").read_text()


class _Kill(Exception):
    pass


def _state(folder):
    from sarpipe.models.weights import read_tensors

    return read_tensors(folder / "weights" / "model.safetensors")[0]


def test_resume_after_a_kill_gives_the_same_weights(tmp_path):
    cfg = _tiny(steps=8, checkpoint_every=3, steps_per_epoch=4, data={**TINY_DATA, "train_samples": None})
    train_difnet(cfg, tmp_path / "straight", progress=False)

    def kill_at_7(step, _loss):
        if step == 7:
            raise _Kill

    with pytest.raises(_Kill):
        train_difnet(cfg, tmp_path / "killed", on_step=kill_at_7, progress=False)
    assert not (tmp_path / "killed" / "weights").exists()
    assert sorted(p.name for p in (tmp_path / "killed" / "checkpoints").glob("*.pt")) == [
        "step_00000003.pt",
        "step_00000006.pt",
    ]
    res = train_difnet(cfg, tmp_path / "killed", progress=False)  # resumes from step 6
    assert res.step == 8
    a, b = _state(tmp_path / "straight"), _state(tmp_path / "killed")
    assert set(a) == set(b) and all(np.array_equal(a[k], b[k]) for k in a)
    log = [json.loads(line) for line in (tmp_path / "killed" / "log.jsonl").read_text().splitlines()]
    assert [r["event"] for r in log].count("resume") == 1
    steps = [r["step"] for r in log if r["event"] == "train"]
    assert steps == sorted(steps) and len(steps) == len(set(steps)) == 8  # the repeated step 7 is logged once
    # a damaged newest checkpoint (a kill while the disk filled) falls back to the one before
    (tmp_path / "killed" / "checkpoints" / "step_00000008.pt").write_bytes(b"\0" * 10)
    (tmp_path / "killed" / "checkpoints" / ".step_00000009.pt.tmp-1").write_bytes(b"x")
    with pytest.warns(RuntimeWarning, match="cannot be read"):
        assert train_difnet(cfg, tmp_path / "killed", progress=False).step == 8
    assert not list((tmp_path / "killed" / "checkpoints").glob(".step_*"))
    b = _state(tmp_path / "killed")
    assert all(np.array_equal(a[k], b[k]) for k in a)
    # a planned stop resumes the same way
    part = train_difnet(cfg, tmp_path / "planned", stop_after=5, progress=False)
    assert part.step == 5 and part.weights is None
    train_difnet(cfg, tmp_path / "planned", progress=False)
    c = _state(tmp_path / "planned")
    assert all(np.array_equal(a[k], c[k]) for k in a)


def test_a_folder_that_is_not_a_training_run_is_left_alone(tmp_path):
    out = tmp_path / "mine"
    (out / "weights").mkdir(parents=True)
    (out / "weights" / "notes.txt").write_text("keep me")
    with pytest.raises(InputError, match="holds no DIFNet training run"):
        train_difnet(_tiny(steps=1), out, progress=False)
    assert (out / "weights" / "notes.txt").read_text() == "keep me"


def test_an_output_folder_of_another_recipe_is_refused(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "train_config.json").write_text(json.dumps({"steps": 1}))
    with pytest.raises(InputError, match="another configuration") as err:
        train_difnet(_tiny(steps=1), out, progress=False)
    assert err.value.where == "--output"


def test_the_committed_cpu_recipe_reads():
    from pathlib import Path

    cfg = load_train_config(Path(__file__).parents[1] / "sarpipe" / "models" / "recipes" / "difnet_cpu.yaml")
    assert (cfg.model.channels, cfg.model.levels, cfg.data.nperseg, cfg.data.frames) == (16, 3, 128, 128)
    vf = cfg.data.valid_for()
    assert vf.range_sampling_rate == (50e6, 400e6) and vf.stft == {"nperseg": 128, "hop": 32, "window": "hann"}
