"""Edge-case policies that every built-in encoder reports through ``summary()``.

Each encoder's ``summary()`` contains a ``policy`` mapping with the keys of
`POLICY_KEYS`, so a run records how the encoder treated its inputs:

- ``dtype``: float64 input and ``module.to(dtype)``.
- ``out_of_range``: values outside the training range at test time.
- ``ties``: fewer distinct values than bins, and heavily tied values.
- ``magnitude``: huge magnitudes such as 1e12.
- ``binary``: a column with two values.
"""

from __future__ import annotations

POLICY_KEYS = ("dtype", "out_of_range", "ties", "magnitude", "binary")

DTYPE = (
    "The module follows module.to(dtype): parameters and buffers, bin edges "
    "included, are converted, and inputs must then have the module's dtype "
    "(float32 unless converted). Bin edges are fitted in float32."
)

NO_BINS = "Not applicable: the encoder fits no bins."

LOOKUP_TIES = (
    "A feature with at most n_bins distinct training values gets one bin per "
    "value. Otherwise quantile edges are used, duplicates removed, with interior "
    "edges moved to midpoints between distinct training values, so no training "
    "value lies on an interior edge. If that leaves one bin, the most frequent "
    "value gets its own bin. Features with fewer bins are padded, and padded bins "
    "are never used."
)

LOOKUP_BINARY = "Two bins, one per value."

PLE_QUANTILE_TIES = (
    "rtdl_num_embeddings compute_bins: n_bins + 1 quantiles with duplicates "
    "removed, so tied values reduce the bin count, down to one bin, in which PLE "
    "is min-max scaling. Features with fewer bins are padded inside the module."
)

PLE_TREE_TIES = (
    "rtdl_num_embeddings compute_bins with one decision tree per feature: split "
    "thresholds plus the minimum and maximum, duplicates removed. A feature "
    "without a useful split gets one bin, in which PLE is min-max scaling."
)

PLE_OUT_OF_RANGE = (
    "rtdl_num_embeddings leaves the first PLE component unclipped below and the "
    "last one unclipped above, so the encoding extrapolates linearly outside the "
    "training range and grows with the distance."
)

PLE_MAGNITUDE = (
    "PLE computes x * (1 / width) - left_edge / width in the module's dtype, so with "
    "|edge| much larger than the bin width, float32 loses about "
    "log10(|edge| / width) of its 7 significant digits."
)

PLE_QUANTILE_BINARY = (
    "Usually one bin [min, max], so PLE encodes the column as 0 and 1 (min-max "
    "scaling). With two bins (an evenly split column) every component is 0 or 1."
)

PLE_TREE_BINARY = (
    "Two bins split at the midpoint if the tree finds the split useful, otherwise "
    "one bin [min, max]. Either way every PLE component is 0 for one value and 1 "
    "for the other."
)

HARD_OUT_OF_RANGE = (
    "Values below the first edge fall in the first bin and values above the last "
    "edge in the last bin, so the output for far-out values is that of the "
    "nearest training bin."
)

HARD_MAGNITUDE = (
    "Lookup compares values with edges and does no arithmetic on them, so any "
    "finite magnitude is binned exactly. NaN falls in the last bin."
)

SOFT_OUT_OF_RANGE = (
    "Values are clamped to the span of the bins before they are scored (the "
    "training span for edge scores, the span of the learned intervals for "
    "interval scores): the nearest (first or last) bin gets the most weight, and "
    "the output stays a convex combination of bin vectors."
)

SOFT_MAGNITUDE = (
    "The clamp to the span of the bins keeps huge values (1e12) from swamping the "
    "scores or cancelling against the edges in float32. Scores are distances "
    "divided by (temperature * median bin width), and the softmax subtracts the "
    "maximum score, so small temperatures saturate the weights instead of "
    "overflowing."
)

AUTODIS_OUT_OF_RANGE = (
    "No fitted range. The projection is piecewise linear in x (one kink at 0), so "
    "far-out values put all the weight on one meta-embedding and the output stays "
    "a convex combination of meta-embeddings."
)

AUTODIS_MAGNITUDE = (
    "No rescaling: inputs are expected standardized upstream. At |x| = 1e12 the "
    "softmax saturates to one meta-embedding, with zero gradient to the "
    "projection."
)

AUTODIS_BINARY = "Two values, each mapped to its own mix of meta-embeddings."

LINEAR_OUT_OF_RANGE = (
    "No fitted range: the embedding is affine in x (then ReLU for linear-relu), "
    "so it extrapolates linearly."
)

LINEAR_MAGNITUDE = (
    "No rescaling: outputs scale with |x|, so inputs are expected standardized "
    "upstream (the preprocessing step does this)."
)

PERIODIC_OUT_OF_RANGE = (
    "No fitted range: cos and sin of 2*pi*c*x are bounded but periodic, so "
    "far-out values map to the same features as some in-range values."
)

PERIODIC_MAGNITUDE = (
    "No rescaling. In float32 the phase 2*pi*c*x has no correct digits once "
    "|c*x| exceeds about 1e7 (an estimate from the 24-bit significand), so the "
    "features become arbitrary but bounded values. Inputs are expected "
    "standardized upstream."
)

VALUE_BINARY = "Encoded from its two values like any other column."


def policy(**texts: str) -> dict[str, str]:
    """Return a policy mapping with the keys of `POLICY_KEYS`, checking them."""
    if set(texts) != set(POLICY_KEYS):
        raise ValueError(
            f"A policy needs exactly the keys {list(POLICY_KEYS)}, got {sorted(texts)}."
        )
    return {key: texts[key] for key in POLICY_KEYS}
