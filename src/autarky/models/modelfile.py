"""Model files and model cards: content-addressed, deterministic bytes, no pickle.

A model file is the canonical CBOR of::

    {"format": "autarky-model/1", "kind": str, "version": str,
     "params": {name: {"dtype": "f8" | "i8", "shape": [int, ...], "data": bytes (little-endian)}},
     "meta": {str: canonical value}}

so the same parameters always give the same bytes, and the same training seed the same hash. Its
content address is ``sha256(bytes)``; on disk it is ``<hex>.model``. A card is canonical JSON (sorted
keys, no spaces, UTF-8) with the fields of :data:`CARD_FIELDS`, saved as ``<hex>.card.json`` under its
own sha256; the card names the model's hash, the model never names the card (that would be a cycle).

Loading decodes with :func:`autarky.encoding.canonical_decode` (which refuses non-canonical bytes),
checks the shape of every array, and, given an expected hash (the file name, or a registry entry),
refuses bytes that do not hash to it: :class:`ModelIntegrityError`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from autarky.crypto.hashing import sha256
from autarky.encoding import canonical_decode, canonical_encode
from autarky.encoding.cbor import DecodeError

FORMAT = "autarky-model/1"
MODEL_SUFFIX = ".model"
CARD_SUFFIX = ".card.json"
_DTYPES = {"f8": np.dtype("<f8"), "i8": np.dtype("<i8")}


class ModelFileError(ValueError):
    """The bytes are not a valid model file (or card)."""


class ModelIntegrityError(ModelFileError):
    """The bytes do not hash to the content address they were loaded under."""


@dataclass(frozen=True)
class ModelFile:
    kind: str  # "pv-forecaster", "battery-lp", ...
    version: str
    params: Mapping[str, NDArray[Any]] = field(default_factory=dict)
    meta: Mapping[str, Any] = field(default_factory=dict)

    def to_bytes(self) -> bytes:
        return encode_model(self)

    @property
    def hash(self) -> bytes:
        return sha256(self.to_bytes())

    def param(self, name: str) -> NDArray[Any]:
        if name not in self.params:
            raise ModelFileError(f"model {self.kind} has no parameter {name!r}")
        return self.params[name]


def _encode_array(array: NDArray[Any]) -> dict[str, Any]:
    if np.issubdtype(array.dtype, np.floating):
        code, data = "f8", np.ascontiguousarray(array, dtype="<f8")
    elif np.issubdtype(array.dtype, np.integer):
        code, data = "i8", np.ascontiguousarray(array, dtype="<i8")
    else:
        raise ModelFileError(f"unsupported parameter dtype {array.dtype}")
    return {"dtype": code, "shape": [int(n) for n in array.shape], "data": data.tobytes()}


def _decode_array(name: str, value: Any) -> NDArray[Any]:
    if not isinstance(value, dict) or set(value) != {"dtype", "shape", "data"}:
        raise ModelFileError(f"parameter {name!r} is not {{dtype, shape, data}}")
    dtype = _DTYPES.get(value["dtype"])
    shape = value["shape"]
    if dtype is None:
        raise ModelFileError(f"parameter {name!r} has unknown dtype {value['dtype']!r}")
    if not isinstance(shape, list) or not all(type(n) is int and n >= 0 for n in shape):
        raise ModelFileError(f"parameter {name!r} has a bad shape")
    count = int(np.prod(shape)) if shape else 1
    if not isinstance(value["data"], bytes) or len(value["data"]) != count * dtype.itemsize:
        raise ModelFileError(f"parameter {name!r}: data length does not match its shape")
    array = np.frombuffer(value["data"], dtype=dtype).reshape(shape).copy()
    array.setflags(write=False)
    return array


def encode_model(model: ModelFile) -> bytes:
    return canonical_encode(
        {
            "format": FORMAT,
            "kind": model.kind,
            "version": model.version,
            "params": {name: _encode_array(np.asarray(model.params[name])) for name in sorted(model.params)},
            "meta": dict(model.meta),
        }
    )


def decode_model(data: bytes, expected_hash: bytes | None = None) -> ModelFile:
    """Parse model-file bytes; with ``expected_hash``, refuse bytes that do not hash to it."""
    if expected_hash is not None and sha256(data) != expected_hash:
        raise ModelIntegrityError(
            f"model bytes hash to {sha256(data).hex()}, expected {expected_hash.hex()}: the file was altered"
        )
    try:
        value = canonical_decode(data)
    except DecodeError as error:
        raise ModelFileError(f"not canonical CBOR: {error}") from error
    if not isinstance(value, dict) or value.get("format") != FORMAT:
        raise ModelFileError(f"not an {FORMAT} file")
    if set(value) != {"format", "kind", "version", "params", "meta"}:
        raise ModelFileError("model file has missing or unknown fields")
    kind, version, params, meta = value["kind"], value["version"], value["params"], value["meta"]
    if not isinstance(kind, str) or not isinstance(version, str):
        raise ModelFileError("kind and version must be text")
    if not isinstance(params, dict) or not isinstance(meta, dict):
        raise ModelFileError("params and meta must be maps")
    return ModelFile(kind, version, {name: _decode_array(name, params[name]) for name in params}, meta)


def save_model(model: ModelFile, directory: str | Path) -> tuple[Path, bytes]:
    """Write ``<hex>.model`` into ``directory``; returns (path, hash)."""
    data = encode_model(model)
    digest = sha256(data)
    path = Path(directory) / (digest.hex() + MODEL_SUFFIX)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path, digest


def hash_from_name(path: str | Path, suffix: str) -> bytes | None:
    """The content address in a file name ``<64 hex><suffix>``, or None for another name."""
    name = Path(path).name
    if not name.endswith(suffix):
        return None
    stem = name[: -len(suffix)]
    if len(stem) != 64:
        return None
    try:
        return bytes.fromhex(stem)
    except ValueError:
        return None


def load_model(path: str | Path, expected_hash: bytes | None = None) -> ModelFile:
    """Read a model file, checking its bytes against ``expected_hash`` or else its file name's hash."""
    data = Path(path).read_bytes()
    return decode_model(
        data, expected_hash if expected_hash is not None else hash_from_name(path, MODEL_SUFFIX)
    )


CARD_FIELDS = (
    "name",
    "version",
    "kind",
    "model_hash",
    "intended_use",
    "inputs",
    "outputs",
    "training_data",
    "metrics",
    "limitations",
)
"""Fields every card has. ``training_data`` = {"records": int, "merkle_root": hex, "anchor_id": hex
or "" (set when anchored), "generator": str, "seed": int}; ``metrics`` = {name: int, ...} in units
named by the key (``_bp`` basis points, ``_wh`` Wh...)."""


@dataclass(frozen=True)
class ModelCard:
    fields: Mapping[str, Any]

    def to_bytes(self) -> bytes:
        return encode_card(self)

    @property
    def hash(self) -> bytes:
        return sha256(self.to_bytes())

    def __getitem__(self, key: str) -> Any:
        return self.fields[key]


def encode_card(card: ModelCard) -> bytes:
    missing = [name for name in CARD_FIELDS if name not in card.fields]
    if missing:
        raise ModelFileError(f"model card lacks {', '.join(missing)}")
    return json.dumps(dict(card.fields), sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def decode_card(data: bytes, expected_hash: bytes | None = None) -> ModelCard:
    if expected_hash is not None and sha256(data) != expected_hash:
        raise ModelIntegrityError(
            f"card bytes hash to {sha256(data).hex()}, expected {expected_hash.hex()}: the card was altered"
        )
    try:
        value = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelFileError(f"card is not JSON: {error}") from error
    if not isinstance(value, dict):
        raise ModelFileError("card is not a JSON object")
    card = ModelCard(value)
    if encode_card(card) != data:
        raise ModelFileError("card is not in canonical JSON form (sorted keys, no spaces)")
    return card


def save_card(card: ModelCard, directory: str | Path) -> tuple[Path, bytes]:
    data = encode_card(card)
    digest = sha256(data)
    path = Path(directory) / (digest.hex() + CARD_SUFFIX)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path, digest


def load_card(path: str | Path, expected_hash: bytes | None = None) -> ModelCard:
    data = Path(path).read_bytes()
    return decode_card(
        data, expected_hash if expected_hash is not None else hash_from_name(path, CARD_SUFFIX)
    )


def card_for(model_hash: bytes, directory: str | Path) -> tuple[Path, ModelCard] | None:
    """The card in ``directory`` that names ``model_hash`` (cards are small; a linear scan)."""
    for path in sorted(Path(directory).glob("*" + CARD_SUFFIX)):
        try:
            card = load_card(path)
        except ModelFileError:
            continue
        if card.fields.get("model_hash") == model_hash.hex():
            return path, card
    return None
