"""Safe model files: skops (no pickle), an explicit list of trusted types, readable metadata.

A model file is a skops zip with one more entry, ``moderation-meta.json``, read and checked
*before* any object is rebuilt: format, scikit-learn version and content hash. Only the types
named in :data:`TRUSTED_TYPES` are ever instantiated.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path
from typing import Any

import sklearn
import skops.io as sio

from classifier.model import Model

FORMAT = "newsroom-moderation-model/1"
META_ENTRY = "moderation-meta.json"

TRUSTED_TYPES: tuple[str, ...] = (
    "classifier.features.CharNgrams",
    "classifier.features.TextPreparer",
    "classifier.features.TextStats",
    "classifier.features.WordNgrams",
    "classifier.model.NBLinearClassifier",
    "numpy.float32",
    "numpy.float64",
    "numpy.dtype",
    "sklearn.calibration.CalibratedClassifierCV",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.isotonic.IsotonicRegression",
    "sklearn.feature_extraction.text.HashingVectorizer",
    "sklearn.feature_extraction.text.TfidfTransformer",
    "sklearn.linear_model._logistic.LogisticRegression",
    "sklearn.pipeline.FeatureUnion",
    "sklearn.pipeline.Pipeline",
)


class ModelFileError(Exception):
    """A model file that cannot be loaded safely, with the reason in words."""


def sklearn_series(version: str) -> str:
    """``"1.9.1"`` -> ``"1.9"``: the part that must match for a file to load."""
    return ".".join(version.split(".")[:2])


def _content_hash(archive: zipfile.ZipFile) -> str:
    """Hash of the schema and arrays with skops' per-run object ids replaced by their order."""
    schema = json.loads(archive.read("schema.json"))
    ids: dict[int, int] = {}
    digest = hashlib.sha256()

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            out = {}
            for key, value in node.items():
                if key == "__id__":
                    out[key] = ids.setdefault(value, len(ids))
                elif key == "file" and isinstance(value, str) and value in names:
                    digest.update(archive.read(value))
                    out[key] = "array"
                else:
                    out[key] = walk(value)
            return out
        if isinstance(node, list):
            return [walk(item) for item in node]
        return node

    names = set(archive.namelist())
    canonical = walk(schema)
    digest.update(json.dumps(canonical, sort_keys=True).encode("utf-8"))
    return digest.hexdigest()[:16]


def save_model(model: Model, path: Path) -> str:
    """Write ``model`` to ``path``; returns its version (content hash)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"featurizer": model.featurizer, "heads": model.heads}
    temporary = path.with_name(path.name + ".tmp")
    sio.dump(payload, temporary, compression=zipfile.ZIP_DEFLATED, compresslevel=6)
    with zipfile.ZipFile(temporary) as archive:
        version = _content_hash(archive)
    meta = dict(model.meta)
    meta.update(
        {
            "format": FORMAT,
            "version": version,
            "sklearn_version": sklearn.__version__,
            "tasks": list(model.heads),
        }
    )
    with zipfile.ZipFile(temporary, "a", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(META_ENTRY, json.dumps(meta, indent=2, sort_keys=True))
    temporary.replace(path)
    model.meta = meta
    return version


def read_meta(path: Path) -> dict[str, Any]:
    """The metadata of a model file, without rebuilding any object."""
    try:
        with zipfile.ZipFile(path) as archive:
            if META_ENTRY not in archive.namelist():
                raise ModelFileError(f"{path} is not a model file of this project (no metadata)")
            return json.loads(archive.read(META_ENTRY))
    except FileNotFoundError:
        raise ModelFileError(f"model file {path} does not exist") from None
    except (zipfile.BadZipFile, json.JSONDecodeError, OSError) as error:
        raise ModelFileError(f"{path} is not a readable model file ({error})") from None


def load_model(path: Path) -> Model:
    """Load a model file after checking its format, scikit-learn version, hash and types."""
    path = Path(path)
    meta = read_meta(path)
    if meta.get("format") != FORMAT:
        raise ModelFileError(f"{path} has format {meta.get('format')!r}; expected {FORMAT!r}")
    saved = str(meta.get("sklearn_version", "unknown"))
    if sklearn_series(saved) != sklearn_series(sklearn.__version__):
        raise ModelFileError(
            f"{path} was trained with scikit-learn {saved}, "
            f"but {sklearn.__version__} is installed; "
            f"retrain it (python -m classifier train) or install scikit-learn {saved}"
        )
    try:
        with zipfile.ZipFile(path) as archive:
            if _content_hash(archive) != meta.get("version"):
                raise ModelFileError(f"{path} is corrupt: its content does not match its version")
        untrusted = [t for t in sio.get_untrusted_types(file=path) if t not in TRUSTED_TYPES]
        if untrusted:
            raise ModelFileError(
                f"{path} contains types this project does not trust: {', '.join(sorted(untrusted))}"
            )
        payload = sio.load(path, trusted=list(TRUSTED_TYPES))
    except ModelFileError:
        raise
    except Exception as error:  # skops raises many kinds on a damaged file; say which file
        raise ModelFileError(f"{path} could not be loaded: {error}") from error
    featurizer = payload["featurizer"]
    heads = payload["heads"]
    return Model(featurizer, heads, meta)
