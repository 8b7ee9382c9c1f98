"""Model files: round trip, stable versions, and refusal of files we must not trust."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import pytest
import skops.io as sio

from classifier import DEFAULT_MODEL_PATH
from classifier.data import Example
from classifier.model import Model, train
from classifier.persist import META_ENTRY, ModelFileError, load_model, read_meta, save_model
from tests.classifier.conftest import TINY


def rewrite_meta(source: Path, target: Path, **changes: object) -> None:
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for item in old.infolist():
            data = old.read(item.filename)
            if item.filename == META_ENTRY:
                meta = json.loads(data)
                meta.update(changes)
                data = json.dumps(meta).encode()
            new.writestr(item.filename, data)


def test_round_trip_keeps_scores(
    tiny_model: Model, tiny_model_file: Path, held_back: list[Example]
) -> None:
    loaded = load_model(tiny_model_file)
    texts = [e.text for e in held_back[:50]]
    assert loaded.score(texts) == tiny_model.score(texts)
    assert loaded.version == read_meta(tiny_model_file)["version"]
    meta = read_meta(tiny_model_file)
    for key in ("version", "sklearn_version", "recipe", "thresholds", "training", "format"):
        assert key in meta


def test_same_data_gives_same_version(corpus: list[Example], tmp_path: Path) -> None:
    first = save_model(train(corpus[:300], TINY), tmp_path / "a.skops")
    second = save_model(train(corpus[:300], TINY), tmp_path / "b.skops")
    third = save_model(train(corpus[:299], TINY), tmp_path / "c.skops")
    assert first == second
    assert third != first


def test_other_sklearn_series_is_refused(tiny_model_file: Path, tmp_path: Path) -> None:
    target = tmp_path / "old.skops"
    rewrite_meta(tiny_model_file, target, sklearn_version="1.2.2")
    with pytest.raises(ModelFileError, match=r"scikit-learn 1\.2\.2"):
        load_model(target)


def test_tampered_content_is_refused(tiny_model_file: Path, tmp_path: Path) -> None:
    target = tmp_path / "tampered.skops"
    rewrite_meta(tiny_model_file, target, version="0000000000000000")
    with pytest.raises(ModelFileError, match="corrupt"):
        load_model(target)


def test_unknown_types_are_refused(tiny_model_file: Path, tmp_path: Path) -> None:
    from collections import OrderedDict  # any type outside the trusted list will do

    from sklearn.preprocessing import FunctionTransformer

    target = tmp_path / "untrusted.skops"
    sio.dump({"featurizer": FunctionTransformer(print), "heads": OrderedDict()}, target)
    shutil.copy(target, tmp_path / "payload.skops")
    meta = read_meta(tiny_model_file)
    with zipfile.ZipFile(target) as archive:
        from classifier.persist import _content_hash

        meta["version"] = _content_hash(archive)
    with zipfile.ZipFile(target, "a") as archive:
        archive.writestr(META_ENTRY, json.dumps(meta))
    with pytest.raises(ModelFileError, match="does not trust"):
        load_model(target)


@pytest.mark.parametrize("content", [b"", b"not a zip", b"PK\x03\x04garbage"])
def test_damaged_files_fail_with_a_message(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "broken.skops"
    path.write_bytes(content)
    with pytest.raises(ModelFileError):
        load_model(path)


def test_missing_file_fails_with_a_message(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="does not exist"):
        load_model(tmp_path / "nope.skops")


def test_shipped_model_loads_and_describes_itself() -> None:
    meta = read_meta(DEFAULT_MODEL_PATH)
    assert DEFAULT_MODEL_PATH.stat().st_size < 25_000_000
    assert set(meta["tasks"]) == {"spam", "abuse"}
    assert "ucc-unhealthy-comments" not in meta["training"]["sources"]  # non-commercial
    model = load_model(DEFAULT_MODEL_PATH)
    assert model.version == meta["version"]
