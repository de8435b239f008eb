"""The user's main job: papermill runs notebooks 01 -> 02 -> 03 end to end."""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from aslfr_lib import pipeline
from aslfr_lib.runner import HarnessRunner, load_submission
from aslfr_lib.synthetic import SynthConfig, generate

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TINY_MODEL = {
    "encoder_dim": 32,
    "decoder_dim": 32,
    "encoder_blocks": 1,
    "decoder_blocks": 1,
    "epochs": 2,
    "warmup_epochs": 1,
    "batch_size": 16,
    "verbose": 2,
}


@pytest.fixture(scope="module")
def dataset(module_tmp_path):
    out = module_tmp_path / "synthetic"
    generate(
        SynthConfig(
            out=str(out),
            sequences=40,
            participants=5,
            seed=3,
            sequences_per_file=20,
            difficulty=0.0,
        ),
        progress=False,
    )
    return out


def write_config(path: Path, **sections) -> Path:
    path.write_text(yaml.safe_dump({"run": "test", **sections}))
    return path


@pytest.mark.slow
def test_pipeline_end_to_end_then_skips_up_to_date_stages(dataset, tmp_path, capfd):
    config = write_config(
        tmp_path / "tiny.yaml",
        preprocess={"frames": 32, "val_fraction": 0.25, "workers": 1},
        train=TINY_MODEL,
        export={"limit": 10},
    )
    run = tmp_path / "run"
    args = ["--config", str(config), "--data", str(dataset), "--out", str(run)]
    assert pipeline.main(args) == 0
    printed = capfd.readouterr()
    # The notebooks' output streams as it happens, one stage prefix per line (training's epochs),
    # and the kernel runs on local sockets: no TCP warning.
    assert "[train] aslfr train: tensorflow on 1 CPU" in printed.out
    assert "[train] epoch 2: validation score" in printed.out
    assert "without encryption" not in printed.out + printed.err

    for stage in pipeline.STAGES:
        executed = json.loads((run / stage.notebook).read_text())
        assert executed["metadata"]["papermill"]["exception"] is None
        assert (run / stage.folder / pipeline.STAGE_METRICS).is_file()
    metrics = json.loads((run / "metrics.json").read_text())
    assert isinstance(metrics["score"], float)
    assert set(metrics["seconds"]) == {"preprocess", "train", "export"}
    for name in ("lr_schedule.png", "loss.png", "distance_distribution_val.png"):
        assert any(Path(p).name == name for p in metrics["plots"]), name
    for plot in metrics["plots"]:
        data = (run / plot).read_bytes()
        assert data.startswith(PNG_SIGNATURE) and len(data) > 1000, plot

    submission = load_submission(run / "submission" / "submission.zip")
    assert submission.size_bytes <= 40 * 2**20
    runner = HarnessRunner(submission)
    assert runner.outputs(np.zeros((5, 164), "float32")).shape[0] == 32

    assert pipeline.main(args) == 0
    printed = capfd.readouterr().out
    assert printed.count("up to date, skipped") == 3


@pytest.mark.slow
def test_failing_stage_exits_non_zero_names_stage_and_cell_and_keeps_notebook(
    dataset, tmp_path, capsys
):
    # val_fraction > 1 is rejected by preprocessing: stage 01 fails.
    config = write_config(tmp_path / "bad.yaml", preprocess={"val_fraction": 2.0}, train=TINY_MODEL)
    run = tmp_path / "run"
    code = pipeline.main(["--config", str(config), "--data", str(dataset), "--out", str(run)])
    assert code == 1
    error = capsys.readouterr().err
    assert "stage 'preprocess' failed in cell" in error
    assert "val_fraction" in error
    kept = run / "01_preprocessing.ipynb"
    assert kept.is_file() and str(kept) in error
    executed = json.loads(kept.read_text())
    assert executed["metadata"]["papermill"]["exception"] is True
    assert not (run / "model").exists()  # later stages did not run


def test_stage_parameters_chain_the_stages(tmp_path):
    parameters = pipeline.stage_parameters(
        {"preprocess": {"frames": 64}, "train": {"epochs": 3}, "export": {"fp16": True}},
        "data/x",
        tmp_path,
    )
    assert parameters["preprocess"] == {
        "frames": 64,
        "data": "data/x",
        "out": str(tmp_path / "processed"),
    }
    assert parameters["train"]["processed"] == parameters["preprocess"]["out"]
    assert parameters["export"]["model"] == parameters["train"]["out"]
    assert parameters["export"]["fp16"] is True


def test_unknown_config_section_is_an_error(tmp_path, dataset):
    config = write_config(tmp_path / "typo.yaml", trian={"epochs": 1})
    with pytest.raises(ValueError, match="trian"):
        pipeline.run_pipeline(pipeline.PipelineConfig(config=str(config), data=str(dataset)))


def test_notebook_parameters_match_the_stage_configs():
    """Each notebook's parameters cell declares exactly its stage config's fields."""
    import nbformat
    from papermill.inspection import inspect_notebook

    from aslfr_lib.export import ExportConfig
    from aslfr_lib.preprocess import PreprocessConfig
    from aslfr_lib.training import TrainConfig

    expected = {
        "01_preprocessing.ipynb": PreprocessConfig,
        "02_training.ipynb": TrainConfig,
        "03_inference_export.ipynb": ExportConfig,
    }
    for name, cls in expected.items():
        path = pipeline.NOTEBOOKS_DIR / name
        nbformat.validate(nbformat.read(str(path), as_version=4))
        declared = inspect_notebook(str(path))
        assert list(declared) == [f.name for f in dataclasses.fields(cls)], name
        for field in dataclasses.fields(cls):
            assert declared[field.name]["help"], f"{name}: {field.name} has no help comment"


def test_notebook_parameter_cells_are_generated_from_the_stage_configs():
    """Each cell is ``config.parameter_cell`` (regenerate: ``config.write_parameter_cell``)."""
    import nbformat

    from aslfr_lib.config import parameter_cell
    from aslfr_lib.export import ExportConfig
    from aslfr_lib.training import TrainConfig

    for name, cls in (
        ("02_training.ipynb", TrainConfig),
        ("03_inference_export.ipynb", ExportConfig),
    ):
        book = nbformat.read(str(pipeline.NOTEBOOKS_DIR / name), as_version=4)
        cell = next(c for c in book.cells if "parameters" in c.metadata.get("tags", []))
        assert cell.source == parameter_cell(cls), name


def test_stage_commands_read_their_section_of_a_pipeline_config(tmp_path):
    """``aslfr train --config configs/demo.yaml`` trains the demo's recipe; flags still win."""
    from aslfr_lib.config import stage_config, stage_parser
    from aslfr_lib.preprocess import PreprocessConfig
    from aslfr_lib.training import TrainConfig

    demo = yaml.safe_load(Path("configs/demo.yaml").read_text())
    parser = stage_parser(TrainConfig, "aslfr train", "")
    train = stage_config(TrainConfig, parser.parse_args(["--config", "configs/demo.yaml"]), "train")
    assert {key: getattr(train, key) for key in demo["train"]} == demo["train"]
    flagged = parser.parse_args(["--config", "configs/demo.yaml", "--epochs", "3"])
    assert stage_config(TrainConfig, flagged, "train").epochs == 3

    parser = stage_parser(PreprocessConfig, "aslfr preprocess", "")
    preprocess = stage_config(
        PreprocessConfig, parser.parse_args(["--config", "configs/demo.yaml"]), "preprocess"
    )
    assert preprocess.data == demo["data"]  # the pipeline's dataset folder
    assert preprocess.frames == demo["preprocess"]["frames"]

    own = tmp_path / "preprocess.yaml"  # a stage's own YAML, even one that only sets ``data``
    own.write_text("data: elsewhere\n")
    assert (
        stage_config(PreprocessConfig, parser.parse_args(["--config", str(own)]), "preprocess").data
        == "elsewhere"
    )
    own.write_text("frames: 32\nbogus: 1\n")
    with pytest.raises(ValueError, match="bogus"):
        stage_config(PreprocessConfig, parser.parse_args(["--config", str(own)]), "preprocess")


def test_demo_dataset_is_stale_when_the_config_asks_for_other_synth_settings(tmp_path):
    data = tmp_path / "synthetic-demo"
    synth = {"sequences": 6000, "participants": 120, "seed": 0}
    assert pipeline.stale_demo_dataset(data, synth) is None  # nothing written yet
    data.mkdir()
    (data / "train.csv").write_text("path,file_id,sequence_id,participant_id,phrase\n")
    assert "no synth.json" in pipeline.stale_demo_dataset(data, synth)  # an earlier version's
    (data / pipeline.DEMO_SYNTH_FILE).write_text(json.dumps({**synth, "participants": 40}))
    assert "participants 40 -> 120" in pipeline.stale_demo_dataset(data, synth)
    (data / pipeline.DEMO_SYNTH_FILE).write_text(json.dumps(synth))
    assert pipeline.stale_demo_dataset(data, synth) is None
    assert pipeline.stale_demo_dataset(data, {}) is None  # a config without synth settings


def test_demo_writes_its_dataset_again_when_the_synth_settings_change(tmp_path, monkeypatch):
    data = tmp_path / "synthetic-demo"
    config = tmp_path / "demo.yaml"
    synth = {"sequences": 12, "participants": 3, "seed": 0, "sequences_per_file": 12}
    config.write_text(yaml.safe_dump({"run": "demo", "data": str(data), "synth": synth}))
    runs = []
    monkeypatch.setattr(pipeline, "main", lambda argv: runs.append(argv) or 0)
    assert pipeline.demo_main(["--config", str(config)]) == 0
    first = (data / "train.csv").read_text()
    assert json.loads((data / pipeline.DEMO_SYNTH_FILE).read_text()) == synth
    config.write_text(
        yaml.safe_dump({"run": "demo", "data": str(data), "synth": {**synth, "seed": 1}})
    )
    assert pipeline.demo_main(["--config", str(config)]) == 0
    assert (data / "train.csv").read_text() != first  # another seed, another dataset
    assert json.loads((data / pipeline.DEMO_SYNTH_FILE).read_text())["seed"] == 1
    assert not data.with_name(data.name + ".partial").exists()
    assert len(runs) == 2 and all("--data" in argv for argv in runs)
