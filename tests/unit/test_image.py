"""Image classification: readers, validation, augmentation, and linear-probe / full runs at 32 px."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fmkit.config.image_generation import AugmentConfig
from fmkit.data.images import list_images, read_labeled_images, stratified_image_split, validate_images
from fmkit.data.tasks.image import augment, make_image_loader, resize_center, to_array, zoom
from fmkit.errors import DataError
from tests.media_helpers import write_colour_images


@pytest.fixture
def colour_images(tmp_path: Path) -> Path:
    return write_colour_images(tmp_path / "images")


def test_folder_per_class(colour_images: Path) -> None:
    data = read_labeled_images(colour_images)
    assert len(data) == 16 and data.class_counts() == {"blue": 8, "red": 8}
    assert data.paths[0] == colour_images / "blue" / "000.png"


def test_csv_with_relative_paths(colour_images: Path) -> None:
    csv = colour_images / "labels.csv"
    csv.write_text("image,category\nred/000.png,warm\nblue/001.png,cold\n", encoding="utf-8")
    data = read_labeled_images(csv)
    assert data.paths == [colour_images / "red/000.png", colour_images / "blue/001.png"]
    assert data.labels == ["warm", "cold"]


def test_csv_missing_column_is_explained(tmp_path: Path) -> None:
    csv = tmp_path / "x.csv"
    csv.write_text("foo,label\na.png,x\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"x.csv: cannot tell which column holds the image path"):
        read_labeled_images(csv)


def test_corrupt_and_missing_images_are_named(colour_images: Path) -> None:
    (colour_images / "red" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    truncated = colour_images / "blue" / "cut.png"
    truncated.write_bytes((colour_images / "blue" / "000.png").read_bytes()[:60])
    with pytest.raises(DataError) as info:
        validate_images(read_labeled_images(colour_images))
    message = info.value.message
    assert "2 image(s) cannot be used" in message
    assert "broken.jpg" in message and "cut.png" in message

    csv = colour_images / "l.csv"
    csv.write_text("path,label\nnope.png,red\nred/000.png,red\nblue/000.png,blue\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"nope.png: image file not found"):
        validate_images(read_labeled_images(csv))


def test_single_class_is_refused(tmp_path: Path) -> None:
    root = write_colour_images(tmp_path / "i", per_class=2)
    for p in (root / "blue").iterdir():
        p.unlink()
    (root / "blue").rmdir()
    with pytest.raises(DataError, match="only one class"):
        validate_images(read_labeled_images(root))


def test_split_is_stratified_and_seeded(colour_images: Path) -> None:
    data = read_labeled_images(colour_images)
    train, held = stratified_image_split(data, 0.25, seed=3)
    assert held.class_counts() == {"blue": 2, "red": 2} and len(train) == 12
    assert stratified_image_split(data, 0.25, seed=3)[1].paths == held.paths
    assert not set(train.paths) & set(held.paths)


def test_augmentation_is_seeded_sized_and_configurable() -> None:
    img = Image.fromarray(np.arange(40 * 30 * 3, dtype=np.uint8).reshape(30, 40, 3))
    cfg = AugmentConfig()
    a = augment(img, 24, cfg, np.random.default_rng([1, 0, 5]))
    b = augment(img, 24, cfg, np.random.default_rng([1, 0, 5]))
    c = augment(img, 24, cfg, np.random.default_rng([1, 1, 5]))
    assert a.size == (24, 24) and np.array_equal(np.asarray(a), np.asarray(b))
    assert not np.array_equal(np.asarray(a), np.asarray(c))
    # Everything off but the flip, with probability 1: exactly a mirrored centre crop.
    flip_only = AugmentConfig(crop_scale_min=1.0, crop_ratio=(1.0, 1.0), rotation_degrees=0, scale=(1.0, 1.0), hflip=1.0,
                              color_jitter=0.0)
    square = img.crop((0, 0, 30, 30))
    flipped = augment(square, 30, flip_only, np.random.default_rng(0))
    assert np.array_equal(np.asarray(flipped), np.asarray(square)[:, ::-1])
    assert zoom(square, 1.0) is square


def test_eval_transform_is_deterministic_and_normalised(colour_images: Path) -> None:
    img = Image.open(colour_images / "red" / "000.png").convert("RGB")
    assert resize_center(img, 16).size == (16, 16)
    arr = to_array(resize_center(img, 16), __import__("fmkit.data.tasks.image", fromlist=["x"]).Normalization())
    assert arr.shape == (3, 16, 16) and arr.dtype == np.float32
    assert arr[0].mean() > arr[2].mean()  # red channel dominates after normalisation too


def test_loader_augments_training_batches_only(colour_images: Path) -> None:
    data = read_labeled_images(colour_images)
    labels = np.zeros(len(data), dtype=np.int64)
    evaluation = make_image_loader(data.paths, labels, 32, 4, 0, shuffle=False, augment_cfg=AugmentConfig())
    first, again = next(iter(evaluation)), next(iter(evaluation))
    assert first["pixel_values"].shape == (4, 3, 32, 32)
    assert np.array_equal(first["pixel_values"].numpy(), again["pixel_values"].numpy())
    training = make_image_loader(data.paths, labels, 32, 16, 0, shuffle=True, augment_cfg=AugmentConfig())
    sampler = training.batch_sampler
    epoch0 = next(iter(training))
    sampler.set_epoch(1)  # type: ignore[union-attr]
    epoch1 = next(iter(training))
    order0, order1 = epoch0["index"].argsort(), epoch1["index"].argsort()
    assert not np.allclose(epoch0["pixel_values"][order0].numpy(), epoch1["pixel_values"][order1].numpy())


@pytest.mark.parametrize("strategy", ["linear-probe", "full"])
def test_image_run_writes_a_complete_run_and_predicts(strategy: str, colour_images: Path, tmp_path: Path) -> None:
    from fmkit.cli import main
    from fmkit.config import load_config
    from fmkit.inference import load_predictor
    from fmkit.workflows import train_for_task

    cfg = load_config(None, {
        "task.type": "image", "data.train": str(colour_images), "output": str(tmp_path / "run"), "strategy.name": strategy,
        "image.image_size": 32, "train.epochs": 1 if strategy == "full" else 5, "train.batch_size": 4,
        "train.progress": False, "data.eval_fraction": 0.25, "train.learning_rate": 1e-2 if strategy != "full" else 1e-4,
        "train.seed": 0,
        "train.early_stopping_patience": 0, "train.threads": 1,  # one thread: no OpenMP waits on a busy CI box
    })
    result = train_for_task(cfg)
    run, m = result.run_dir, result.metrics
    assert m["strategy"] == strategy and m["num_examples"] == 4 and m["train_examples"] == 12
    if strategy == "linear-probe":
        assert m["accuracy"] == 1.0  # red vs blue is linearly separable in ImageNet features
    for name in ("config.yaml", "metrics.json", "history.jsonl", "eval_predictions.jsonl", "confusion_matrix.csv",
                 "classification_report.txt", "model/fmkit.json", "model/model.safetensors"):
        assert (run / name).is_file(), name
    meta = json.loads((run / "model" / "fmkit.json").read_text())
    assert meta["task"] == "image" and meta["labels"] == ["blue", "red"] and meta["image_size"] == 32

    predictor = load_predictor(run)
    records = list(predictor.predict_source(colour_images / "red"))
    assert len(records) == 8 and set(records[0]) == {"path", "label", "scores"}
    if strategy == "linear-probe":
        assert all(r["label"] == "red" for r in records)
    assert main(["predict", str(run / "model"), str(colour_images / "blue" / "001.png"),
                 "--output", str(tmp_path / "p.jsonl")]) == 0
    assert json.loads((tmp_path / "p.jsonl").read_text())["path"].endswith("001.png")
    if strategy == "linear-probe":
        check_served_and_evaluated(run, colour_images, tmp_path)


def check_served_and_evaluated(run: Path, images: Path, tmp_path: Path) -> None:
    """The image model through the registry's routes and evaluation: served base64 images score as the same
    files do in `fmkit predict`; bad images are refused one by one; `fmkit eval` records its metrics."""
    import base64

    from fastapi.testclient import TestClient

    from fmkit.cli import main
    from fmkit.config.schema import ServeConfig
    from fmkit.inference import image_server, load_predictor
    from fmkit.inference.server import create_app

    predictor = load_predictor(run)
    red = images / "red" / "001.png"
    from_file = predictor.predict([red])[0]
    encoded = base64.b64encode(red.read_bytes()).decode()
    with TestClient(create_app(predictor, ServeConfig())) as client:
        answer = client.post("/v1/predict", json={"images": [encoded, f"data:image/png;base64,{encoded}"]})
        assert answer.status_code == 200, answer.text
        served = answer.json()["predictions"]
        assert [p["label"] for p in served] == ["red", "red"]
        assert served[0]["scores"] == pytest.approx(from_file["scores"], abs=1e-5)
        not_base64 = client.post("/v1/predict", json={"images": [encoded, "not base64!"]})
        assert not_base64.status_code == 422 and "images[1]" in not_base64.json()["error"]
        not_an_image = client.post("/v1/predict", json={"images": [base64.b64encode(b"hello").decode()]})
        assert not_an_image.status_code == 422 and "images[0]" in not_an_image.json()["error"]
        assert client.post("/v1/predict", json={"texts": ["a"]}).status_code == 422
        limit = image_server.MAX_IMAGE_PIXELS
        image_server.MAX_IMAGE_PIXELS = 100  # the 32x32 test image is then "too large"
        try:
            too_big = client.post("/v1/predict", json={"images": [encoded]})
        finally:
            image_server.MAX_IMAGE_PIXELS = limit
        assert too_big.status_code == 413 and "pixels" in too_big.json()["error"]
    from fmkit.tracking import Registry

    assert main(["eval", str(run), "--data", str(images), "--runs", str(tmp_path / "runs")]) == 0
    evals = [r for r in Registry(tmp_path / "runs").runs() if r.command == "eval"]
    # The whole folder, training images included: the accuracy of the predictions `fmkit predict` makes.
    records = list(predictor.predict_source(images))
    accuracy = sum(Path(r["path"]).parent.name == r["label"] for r in records) / len(records)
    assert len(evals) == 1 and evals[0].headline()["accuracy"] == pytest.approx(accuracy), evals


def test_list_images_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such image file or folder"):
        list_images(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no image files"):
        list_images(tmp_path / "empty")
