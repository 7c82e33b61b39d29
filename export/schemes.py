"""Quantization schemes the exporter tries, how a candidate is judged, and which one is chosen.

A candidate is judged on the calibration windows (TFLite: out of sample, by cross-fitting): latent
cosine/SQNR vs float PyTorch, and the phone model's F1 drop and flips on the modality subsets.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from crossl_edge.export.thresholds import LatentBars, check_f1_drop
from crossl_edge.metrics import (
    cosine_rows,
    modality_subsets,
    presence_vector,
    scores,
    sqnr_db,
)

log = logging.getLogger(__name__)

GOOD_SQNR_DB = 30.0   # a passing candidate with no flip and this SQNR ends the search early


@dataclass(frozen=True)
class Scheme:
    """One way to quantize an encoder: calibration input clipping, granularity, ORT options."""

    name: str
    input_percentile: float = 100.0        # calibration windows clipped to [100 - p, p]
    per_channel: bool = True               # per-channel weight scales (else per-tensor)
    calibration: str = "minmax"            # ORT CalibrationMethod: minmax, percentile, entropy
    symmetric_activations: bool = False    # ORT ActivationSymmetric
    float_ops: tuple[str, ...] = ()        # ORT op types left in float (e.g. LayerNormalization)
    int16_activations: bool = False        # ORT QInt16 activations (int8 weights)
    layernorm: str = "decomposed"          # TFLite LayerNorm graph (keras_twin.LAYERNORMS)
    headroom: float = 1.0                  # activation ranges widened ~this much (calibration_set)

    def to_json(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "float_ops": list(self.float_ops)}

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Scheme:
        """The scheme of a record's ``options`` (unknown keys ignored, missing ones defaulted)."""
        known = {f.name for f in dataclasses.fields(cls)}
        kw = {k: v for k, v in obj.items() if k in known}
        if "float_ops" in kw:
            kw["float_ops"] = tuple(kw["float_ops"])
        return cls(**kw)


def _tfl(p: float, *, per_channel: bool = True, layernorm: str = "decomposed",
         headroom: float = 1.0) -> Scheme:
    tag = "per-channel" if per_channel else "per-tensor"
    ln = "" if layernorm == "decomposed" else f"/layernorm-{layernorm}"
    room = "" if headroom == 1.0 else f"/headroom{headroom:g}"
    return Scheme(f"minmax/{tag}/input-p{p:g}{room}{ln}", input_percentile=p,
                  per_channel=per_channel, layernorm=layernorm, headroom=headroom)


# Every candidate of a LayerNorm form is scored. Clipped calibration inputs first: the input
# range dominates the LayerNorm encoder's error (on UCI HAR's spiky gyroscope, p95-p97 gave 3 dB
# more test-window latent SQNR than p99). Headroom keeps a window larger than any calibration
# window from saturating (an edge latent went from 25 to 38 dB SQNR on unseen windows).
# LayerNorm as one L2_NORMALIZATION kernel is a fallback: it removes the int8 variance/RSQRT
# error, but XNNPACK does not run it, so LiteRT splits the graph (slower).
TFLITE_SCHEMES: tuple[Scheme, ...] = (
    _tfl(99.5), _tfl(99.9), _tfl(99.0), _tfl(100.0), _tfl(98.0), _tfl(95.0),
    _tfl(99.5, headroom=1.25), _tfl(100.0, headroom=1.25), _tfl(99.5, per_channel=False),
    _tfl(99.5, layernorm="l2norm"), _tfl(99.9, layernorm="l2norm"),
    _tfl(100.0, headroom=1.25, layernorm="l2norm"),
)
ONNX_SCHEMES: tuple[Scheme, ...] = (
    Scheme("minmax/per-channel"),
    Scheme("minmax/per-channel/layernorm-float", float_ops=("LayerNormalization",)),
    Scheme("percentile/per-channel", calibration="percentile"),
    Scheme("entropy/per-channel", calibration="entropy"),
    Scheme("minmax/per-channel/symmetric", symmetric_activations=True),
    Scheme("minmax/per-tensor", per_channel=False),
    Scheme("minmax/per-channel/int16-activations", int16_activations=True),
)


def onnx_schemes(input_percentile: float, headroom: float = 1.0) -> tuple[Scheme, ...]:
    """The ORT candidates, calibrated with the input clipping and headroom TFLite's search chose."""
    return tuple(dataclasses.replace(s, input_percentile=input_percentile, headroom=headroom)
                 for s in ONNX_SCHEMES)


@dataclass(frozen=True, kw_only=True)
class Targets(LatentBars):
    """What a candidate must reach on the calibration windows (parity's latent defaults).

    Prediction flips and the F1 drop rank the passing candidates; they gate only when
    ``max_f1_drop`` is set (one flip among a few dozen calibration windows is several points).
    """

    max_f1_drop: float | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        check_f1_drop(self.max_f1_drop)


@dataclass
class Trial:
    """One candidate: its scheme, its scores (or the error that stopped it), and its bytes."""

    scheme: Scheme
    scores: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    data: bytes = b""
    tflm_rejected: bool = False    # passed, but TFLite Micro changed a calibration prediction

    def passes(self, t: Targets) -> bool:
        s = self.scores
        return (self.error is None and s["cosine_mean"] >= t.min_cosine
                and s["sqnr_db"] >= t.min_sqnr_db
                and (t.max_f1_drop is None or s["max_f1_drop"] <= t.max_f1_drop + 1e-9))

    def good(self, t: Targets) -> bool:
        s = self.scores
        return self.passes(t) and s["flips"] == 0 and s["sqnr_db"] >= GOOD_SQNR_DB

    def to_json(self) -> dict[str, Any]:
        return {"scheme": self.scheme.name, "scores": self.scores, "error": self.error}


MAX_SUBSETS = 16   # modality subsets a candidate is judged on (all of them up to 5 modalities)


def judged_subsets(names: list[str], name: str, *,
                   limit: int = MAX_SUBSETS) -> list[tuple[str, ...]]:
    """The subsets containing ``name`` a candidate is judged on: all of them up to ``limit``;
    beyond, ``name`` alone, every modality, every one but one, then the smallest others."""
    every = [s for s in modality_subsets(names) if name in s]
    if len(every) <= limit:
        return every
    first = [(name,), tuple(names), *(s for s in every if len(s) == len(names) - 1)]
    rest = sorted((s for s in every if s not in first), key=len)
    return list(dict.fromkeys([*first, *rest]))[:limit]


@dataclass
class Judge:
    """Float latents of every modality on the judged windows and the float phone model; the
    float model's predictions and macro-F1 per subset are computed once and shared by every
    candidate of every modality."""

    model: Any                              # CroSSL (PyTorch), for its classify()
    names: list[str]
    reference: dict[str, np.ndarray]        # name -> (N, D) float latents
    labels: np.ndarray                      # (N,)
    n_classes: int
    _float: dict[tuple[str, ...], tuple[np.ndarray, float]] = field(
        default_factory=dict, repr=False)

    def predictions(self, subset: tuple[str, ...], swap: dict[str, np.ndarray]) -> np.ndarray:
        """Phone-model predictions (N,) with ``swap``'s latents in place of the float ones."""
        import torch

        lat = np.stack([swap.get(n, self.reference[n]) for n in self.names], axis=1)
        pres = np.repeat(presence_vector(self.names, subset)[None], len(lat), 0)
        with torch.no_grad():
            logits = self.model.classify(torch.from_numpy(lat.astype(np.float32)),
                                         torch.from_numpy(pres))
        return logits.numpy().argmax(-1)

    def float_predictions(self, subset: tuple[str, ...]) -> tuple[np.ndarray, float]:
        """The float model's predictions on ``subset`` and their macro-F1 (cached)."""
        if subset not in self._float:
            pf = self.predictions(subset, {})
            self._float[subset] = pf, float(scores(self.labels, pf, self.n_classes)["macro_f1"])
        return self._float[subset]

    def subsets(self, name: str) -> list[tuple[str, ...]]:
        return judged_subsets(self.names, name)

    def score(self, name: str, latents: np.ndarray) -> dict[str, Any]:
        """Latent fidelity of ``latents`` (N, D) and the phone model's F1 drop / flips."""
        ref = self.reference[name]
        sqnr = sqnr_db(latents, ref)
        cos = cosine_rows(latents, ref)
        drops, flips = [], 0
        for subset in self.subsets(name):
            pf, f1 = self.float_predictions(subset)
            pq = self.predictions(subset, {name: latents})
            drops.append(f1 - float(scores(self.labels, pq, self.n_classes)["macro_f1"]))
            flips += int((pf != pq).sum())
        return {"cosine_mean": float(cos.mean()), "cosine_min": float(cos.min()),
                "sqnr_db": float(min(sqnr, 99.0)), "max_f1_drop": max(drops), "flips": flips,
                "windows": int(len(ref))}

    def disagreements(self, name: str, a: np.ndarray, b: np.ndarray) -> int:
        """Windows x subsets where latents ``a`` and ``b`` of ``name`` predict differently."""
        return sum(int((self.predictions(s, {name: a}) != self.predictions(s, {name: b})).sum())
                   for s in self.subsets(name))


SQNR_TIE_DB = 1.0   # SQNR differences below this are estimation noise (cross-fits on few windows)


def rank(t: Trial) -> tuple[int, float]:
    """Sort key of passing candidates: fewest calibration flips, then highest latent SQNR."""
    return t.scores["flips"], -t.scores["sqnr_db"]


def preferred(trials: list[Trial]) -> list[Trial]:
    """``trials`` (all scored) best first: fewest flips; among those, the earliest in the scheme
    list whose SQNR is within SQNR_TIE_DB of the best, so a later candidate displaces an earlier
    one only by a margin larger than the estimate's noise; then the rest by rank."""
    if not trials:
        return []
    fewest = min(t.scores["flips"] for t in trials)
    pool = [t for t in trials if t.scores["flips"] == fewest]
    top = max(t.scores["sqnr_db"] for t in pool)
    first = next(t for t in pool if t.scores["sqnr_db"] >= top - SQNR_TIE_DB)
    return [first, *sorted((t for t in trials if t is not first), key=rank)]


def choose(trials: list[Trial], targets: Targets) -> tuple[Trial | None, str]:
    """The chosen trial and why: the preferred() candidate passing the thresholds (and not changed
    by TFLite Micro); else the least TFLM-changed one; else None."""
    passing = [t for t in trials if t.passes(targets) and not t.tflm_rejected]
    if passing:
        best = preferred(passing)[0]
        return best, (f"of {len(passing)} candidate(s) passing the thresholds, fewest prediction "
                      f"flips on the calibration windows ({best.scores['flips']}), then the "
                      f"first within {SQNR_TIE_DB:g} dB of the highest latent SQNR "
                      f"({best.scores['sqnr_db']:.1f} dB)")
    micro = [t for t in trials if t.tflm_rejected]
    if micro:   # every passing candidate rounds a boundary window differently on TFLM
        best = min(micro, key=lambda t: (t.scores["tflm"]["prediction_disagreements"], *rank(t)))
        return best, ("every passing candidate had TFLite Micro change a calibration prediction "
                      "vs LiteRT; fewest such changes, then fewest flips, then highest SQNR")
    return None, "no candidate met the thresholds"


@dataclass(frozen=True)
class SchemeRecord:
    """The manifest's record of one int8 format's search (``quantization.scheme.<format>``):
    the chosen scheme and its options, why, its scores, every candidate, and whether the time
    budget (--max-search-seconds) cut the search short. ``from_json``/``read`` are its readers."""

    chosen: str | None
    options: dict[str, Any] | None
    why: str
    scores: dict[str, Any] | None
    tried: list[dict[str, Any]]
    cut_short: bool = False

    @property
    def scheme(self) -> Scheme | None:
        """The chosen scheme's options as a Scheme (None when nothing was chosen)."""
        return Scheme.from_json(self.options) if self.options else None

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, obj: Any) -> SchemeRecord | None:
        """The record of one format (None for anything that is not one, e.g. older metadata)."""
        if not isinstance(obj, dict) or "chosen" not in obj:
            return None
        return cls(chosen=obj["chosen"], options=obj.get("options"), why=str(obj.get("why", "")),
                   scores=obj.get("scores"), tried=list(obj.get("tried") or []),
                   cut_short=bool(obj.get("cut_short", False)))

    @classmethod
    def read(cls, scheme: Any) -> dict[str, SchemeRecord]:
        """Per int8 format, the records in a ``quantization.scheme`` object (empty for bundles
        exported before the search existed)."""
        recs = {f: cls.from_json(r) for f, r in (scheme or {}).items()} \
            if isinstance(scheme, dict) else {}
        return {f: r for f, r in recs.items() if r is not None}


def record(trials: list[Trial], chosen: Trial | None, why: str, *,
           cut_short: bool = False) -> SchemeRecord:
    """The manifest's record of a format's search: chosen scheme, why, and every candidate."""
    return SchemeRecord(chosen=chosen.scheme.name if chosen else None,
                        options=chosen.scheme.to_json() if chosen else None, why=why,
                        scores=chosen.scores if chosen else None,
                        tried=[t.to_json() for t in trials], cut_short=cut_short)


def best_effort(trials: list[Trial]) -> Trial | None:
    """The least bad candidate (for the failure report): highest SQNR among those that ran."""
    ran = [t for t in trials if t.scores]
    return max(ran, key=lambda t: t.scores["sqnr_db"]) if ran else None
