"""The residual codebook: geometry of the residual, round trips, balance, determinism, updates."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hymirec.codebook import (
    CodebookConfig,
    CodebookError,
    ResidualCodebook,
    clustered_embeddings,
    fit,
    neighbour_recall,
    top_k_cosine,
)
from hymirec.codebook.balanced_kmeans import capacity, capacity_assign
from hymirec.codebook.geometry import CosineGeometry
from hymirec.codebook.scales import ScaleCodec, pack, unpack

DIM = 32


def small_config(**overrides) -> CodebookConfig:
    settings = dict(layers=3, k=16, kmeans_iters=8, init_iters=5, basepool_size=4000, seed=0)
    settings.update(overrides)
    return CodebookConfig(**settings)


@pytest.fixture(scope="module")
def data() -> np.ndarray:
    return clustered_embeddings(3000, DIM, n_topics=6, clusters_per_topic=4, rank=4, seed=0)


@pytest.fixture(scope="module")
def held_out() -> np.ndarray:
    # new items of the same catalogue: same mixture, another draw
    return clustered_embeddings(3000, DIM, n_topics=6, clusters_per_topic=4, rank=4, sample_seed=1)


@pytest.fixture(scope="module")
def cosine_book(data) -> ResidualCodebook:
    return fit(data, small_config(scale_dtype="float32"))


@pytest.fixture(scope="module")
def euclidean_book(data) -> ResidualCodebook:
    return fit(data, small_config(variant="euclidean"))


# ------------------------------------------------------------------- the residual itself
def test_residual_is_orthogonal_to_the_chosen_centroid(cosine_book, held_out):
    x = held_out[:500].copy()
    before = x.copy()
    for layer, codes, _, residual in cosine_book.encode_layers(x):
        chosen = cosine_book.centroids[layer][codes]
        dots = np.einsum("ij,ij->i", residual, chosen)
        # relative to the size of what was projected, so the bound is a float32 tolerance
        assert np.abs(dots).max() <= 1e-5 * np.linalg.norm(before, axis=1).max()
        # the part removed is exactly scale * centroid with scale = e.c / ||c||^2
        scale = np.einsum("ij,ij->i", before, chosen) / np.einsum("ij,ij->i", chosen, chosen)
        np.testing.assert_allclose(before - residual, scale[:, None] * chosen, atol=1e-5)
        before = residual.copy()


def test_residual_energy_never_grows_for_the_cosine_variant(cosine_book, held_out):
    x = held_out[:500].copy()
    norms = [np.linalg.norm(x, axis=1)]
    for _, _, _, residual in cosine_book.encode_layers(x):
        norms.append(np.linalg.norm(residual, axis=1))
    for a, b in zip(norms, norms[1:]):
        assert np.all(b <= a + 1e-6)


def test_euclidean_residual_is_the_difference(euclidean_book, held_out):
    x = held_out[:300].copy()
    before = x.copy()
    for layer, codes, stored, residual in euclidean_book.encode_layers(x):
        assert stored is None
        np.testing.assert_allclose(residual, before - euclidean_book.centroids[layer][codes], atol=1e-6)
        before = residual.copy()


def test_cosine_scale_formula_holds_for_non_unit_centroids():
    rng = np.random.default_rng(0)
    e, c = rng.standard_normal((5, 8)), 3.0 * rng.standard_normal((5, 8))
    expected = (e * c).sum(1) / (c * c).sum(1)
    np.testing.assert_allclose(CosineGeometry(antipodal=True).scale(e, c), expected, rtol=1e-6)


def test_antipodal_assignment_uses_negative_scales(data, held_out):
    signed = fit(data, small_config(scale_dtype="float32"))
    antipodal = fit(data, small_config(scale_dtype="float32", antipodal=True))
    _, signed_scales = signed.encode(held_out)
    _, antipodal_scales = antipodal.encode(held_out)
    # residuals point every way, so taking -c is often the better choice in later layers
    assert (antipodal_scales[:, 1:] < 0).mean() > 0.2
    assert (signed_scales[:, 1:] < 0).mean() < (antipodal_scales[:, 1:] < 0).mean() / 2
    assert (
        antipodal.encode_with_quality(held_out).cosines[:, -1].mean()
        > signed.encode_with_quality(held_out).cosines[:, -1].mean()
    )


@pytest.mark.parametrize("scale_dtype", ["float32", "float16"])
def test_a_centroid_encodes_and_decodes_to_itself(data, scale_dtype):
    book = fit(data, small_config(scale_dtype=scale_dtype))
    first = book.centroids[0]
    codes, scales = book.encode(first)
    assert np.array_equal(codes[:, 0], np.arange(len(first)))
    np.testing.assert_allclose(book.decode(codes, scales), first, atol=1e-5)


def test_reconstruction_cosine_rises_with_every_layer(data, held_out):
    for variant in ("cosine", "euclidean"):
        book = fit(data, small_config(variant=variant, layers=4))
        basepool = [s.reconstruction_cosine for s in book.stats().layer_stats]
        items = book.encode_with_quality(held_out).cosines.mean(axis=0)
        assert all(b > a for a, b in zip(basepool, basepool[1:])), (variant, basepool)
        assert all(b > a for a, b in zip(items, items[1:])), (variant, items)
        assert items[-1] - items[0] > 0.05, (variant, items)


def test_decode_matches_the_sum_of_scaled_centroids(cosine_book, held_out):
    codes, scales = cosine_book.encode(held_out[:50])
    expected = sum(
        scales[:, l:l + 1] * cosine_book.centroids[l][codes[:, l]] for l in range(3)
    )
    np.testing.assert_allclose(cosine_book.decode(codes, scales), expected, atol=1e-6)


def test_cosine_beats_euclidean_at_equal_layers_on_neighbour_recall(cosine_book, euclidean_book, held_out):
    queries = np.arange(0, 3000, 30)
    truth = top_k_cosine(held_out[queries], [(0, held_out)], 10, exclude=queries)
    recall = {}
    for name, book in (("cosine", cosine_book), ("euclidean", euclidean_book)):
        approx = book.decode(*book.encode(held_out))
        found = top_k_cosine(held_out[queries], [(0, approx)], 10, exclude=queries)
        recall[name] = neighbour_recall(truth, found)
    assert recall["cosine"] > recall["euclidean"], recall


# ------------------------------------------------------------------------------ balance
def test_capacity_assign_respects_the_cap_when_everyone_wants_the_same_cluster():
    rng = np.random.default_rng(0)
    scores = rng.random((1000, 10)).astype(np.float32)
    scores[:, 0] += 10.0  # every item's first choice is cluster 0
    cap = capacity(1000, 10, 0.1)
    assign = capacity_assign(scores, cap)
    sizes = np.bincount(assign, minlength=10)
    assert cap == 110 and sizes.max() <= cap and sizes.sum() == 1000
    # cluster 0 is filled by the items that score it highest
    kept = np.sort(np.flatnonzero(assign == 0))
    assert np.array_equal(kept, np.sort(np.argsort(-scores[:, 0])[:cap]))


def test_capacity_assign_is_argmax_when_nothing_overflows():
    scores = np.random.default_rng(1).random((200, 8)).astype(np.float32)
    assert np.array_equal(capacity_assign(scores, 200), scores.argmax(1))


def test_capacity_assign_refuses_too_little_room():
    with pytest.raises(ValueError, match="cannot hold"):
        capacity_assign(np.zeros((10, 2), dtype=np.float32), 4)


@pytest.mark.parametrize("slack", [0.0, 0.1, 0.5])
def test_balanced_fit_keeps_every_cluster_within_the_stated_bound(data, slack):
    book = fit(data, small_config(balance_slack=slack, layers=2, k=24))
    for layer in book.stats().layer_stats:
        bound = math.ceil((1 + slack) * len(data) / 24)
        assert layer.capacity == bound
        assert max(layer.fit_sizes) <= bound
        assert sum(layer.fit_sizes) == len(data)


def test_unbalanced_fit_exceeds_the_bound_on_skewed_data(data):
    # the mixture's Zipf-like popularity makes plain k-means clusters uneven; this is the
    # imbalance the cap removes
    book = fit(data, small_config(balanced=False, layers=1, k=24))
    assert max(book.stats().layer_stats[0].fit_sizes) > capacity(len(data), 24, 0.1)


# -------------------------------------------------------------------------- determinism
def test_fixed_seed_gives_identical_codes(data, held_out):
    a = fit(data, small_config())
    b = fit(data, small_config())
    codes_a, scales_a = a.encode(held_out)
    codes_b, scales_b = b.encode(held_out)
    assert np.array_equal(codes_a, codes_b) and np.array_equal(scales_a, scales_b)
    for ca, cb in zip(a.centroids, b.centroids):
        assert np.array_equal(ca, cb)
    other = fit(data, small_config(seed=1))
    assert not np.array_equal(other.encode(held_out)[0], codes_a)


def test_encoding_does_not_depend_on_batch_size(cosine_book, held_out):
    whole = cosine_book.encode(held_out)
    batched = cosine_book.encode(held_out, batch_size=7)
    assert np.array_equal(whole[0], batched[0]) and np.array_equal(whole[1], batched[1])


def test_fit_samples_the_basepool(data):
    book = fit(data, small_config(basepool_size=1000))
    assert book.stats().basepool_size == 1000
    assert sum(book.stats().layer_stats[0].fit_sizes) == 1000


# ------------------------------------------------------------------- storage and stats
@pytest.mark.parametrize(
    "settings, code_dtype, scale_columns, bytes_per_item",
    [
        (dict(), np.uint8, 3, 9),
        (dict(scale_dtype="float32"), np.uint8, 3, 15),
        (dict(scale_dtype="uint8"), np.uint8, 3, 6),
        (dict(scale_dtype="uint4", layers=4), np.uint8, 2, 6),
        (dict(scale_dtype="uint4"), np.uint8, 2, 5),
        (dict(k=300, layers=2), np.uint16, 2, 8),
        (dict(variant="euclidean"), np.uint8, None, 3),
    ],
)
def test_storage_types_and_bytes_per_item(data, settings, code_dtype, scale_columns, bytes_per_item):
    config = small_config(**{"k": 16, **settings})
    assert config.bytes_per_item == bytes_per_item
    assert config.code_dtype == np.dtype(code_dtype)
    if config.ks[0] > 256:
        return  # 300 centroids need more vectors than the test fixture; the types are enough
    book = fit(data, config)
    codes, scales = book.encode(data[:10])
    assert codes.dtype == code_dtype
    assert (scales is None) if scale_columns is None else scales.shape == (10, scale_columns)
    stats = book.stats()
    assert stats.bytes_per_item == bytes_per_item
    assert stats.compression_ratio == pytest.approx(4 * DIM / bytes_per_item)
    assert stats.compression_ratio_2048 == pytest.approx(4 * 2048 / bytes_per_item)


def test_paper_setting_compresses_2048_d_more_than_300x():
    config = CodebookConfig()  # cosine, 3 layers x 256, fp16 scales
    assert config.bytes_per_item == 9 and 4 * 2048 / config.bytes_per_item > 300


def test_quantised_scales_cost_little(data, held_out):
    exact = fit(data, small_config(scale_dtype="float32")).encode_with_quality(held_out)
    four = fit(data, small_config(scale_dtype="uint4")).encode_with_quality(held_out)
    assert four.cosines[:, -1].mean() > exact.cosines[:, -1].mean() - 0.01


def test_uint4_packing_round_trips_odd_layer_counts():
    values = np.random.default_rng(0).integers(0, 16, (50, 5)).astype(np.uint8)
    packed = pack(values, "uint4")
    assert packed.shape == (50, 3)
    assert np.array_equal(unpack(packed, "uint4", 5), values)


def test_scale_levels_sit_where_the_scales_are():
    # first-layer scales crowd into a narrow band with a few outliers, as cosines to a centroid do
    rng = np.random.default_rng(0)
    scales = np.concatenate([rng.normal(0.8, 0.05, 5000), [0.05, 0.1]]).astype(np.float32)
    codec = ScaleCodec.fitted("uint4", scales)
    assert codec.levels.shape == (16,) and np.all(np.diff(codec.levels) >= 0)
    error = np.mean((codec.decode(codec.encode(scales)) - scales) ** 2)
    even = np.linspace(scales.min(), scales.max(), 16)
    even_error = np.mean((even[np.abs(scales[:, None] - even).argmin(1)] - scales) ** 2)
    assert error < even_error / 4
    # out-of-range values take the end levels
    extremes = codec.decode(codec.encode(np.array([-5.0, 5.0], dtype=np.float32)))
    assert extremes.tolist() == [codec.levels[0], codec.levels[-1]]


def test_save_and_load_round_trip(tmp_path, cosine_book, held_out):
    path = cosine_book.save(tmp_path / "book.safetensors")
    loaded = ResidualCodebook.load(path, expect=cosine_book.config)
    codes, scales = cosine_book.encode(held_out[:100])
    loaded_codes, loaded_scales = loaded.encode(held_out[:100])
    assert np.array_equal(codes, loaded_codes) and np.array_equal(scales, loaded_scales)
    np.testing.assert_array_equal(loaded.decode(codes, scales), cosine_book.decode(codes, scales))
    assert loaded.stats().to_dict() == cosine_book.stats().to_dict()


# ---------------------------------------------------------------- incremental update
def test_add_encodes_without_refitting_and_tracks_drift(data, held_out):
    book = fit(data, small_config(drift_window=1000))
    before = [c.copy() for c in book.centroids]
    codes, scales = book.add(held_out[:400])
    assert all(np.array_equal(a, b) for a, b in zip(before, book.centroids))
    expected_codes, expected_scales = book.encode(held_out[:400])
    assert np.array_equal(codes, expected_codes) and np.array_equal(scales, expected_scales)
    status = book.drift()
    cosines = book.encode_with_quality(held_out[:400]).cosines[:, -1]
    assert status.n_recent == 400
    assert status.recent_cosine == pytest.approx(cosines.mean(), rel=1e-6)
    assert not status.needs_refresh
    # the window keeps only the latest drift_window items
    book.add(held_out[400:1900])
    tail = book.encode_with_quality(held_out[900:1900]).cosines[:, -1]
    assert book.drift().n_recent == 1000
    assert book.drift().recent_cosine == pytest.approx(tail.mean(), rel=1e-6)


def test_refresh_refits_only_when_recent_items_drift(data, held_out):
    book = fit(data, small_config())
    book.add(held_out[:500])
    assert book.refresh(data) is False  # same distribution: no refit
    first = book.centroids[0].copy()
    # a catalogue of new kinds of items: a different mixture the codebook has never seen
    shifted = clustered_embeddings(3000, DIM, n_topics=6, clusters_per_topic=4, rank=4, seed=7)
    book.add(shifted)
    status = book.drift()
    assert status.needs_refresh and status.recent_cosine < status.threshold
    before = book.encode_with_quality(shifted).cosines[:, -1].mean()
    assert book.refresh(np.vstack([data, shifted])) is True
    assert not np.array_equal(first, book.centroids[0])
    after = book.encode_with_quality(shifted).cosines[:, -1].mean()
    assert after > before + 0.02
    assert book.drift().n_recent == 0  # the window restarts with the new codebook


def test_refresh_threshold_and_force(data, held_out):
    book = fit(data, small_config())
    book.add(held_out[:200])
    assert book.refresh(data, threshold=0.0) is False
    assert book.refresh(data, threshold=1.0) is True
    assert book.refresh(data, force=True) is True


def test_drift_window_survives_save_and_load(tmp_path, data, held_out):
    book = fit(data, small_config(drift_window=300))
    book.add(held_out[:500])
    loaded = ResidualCodebook.load(book.save(tmp_path / "b.safetensors"))
    assert loaded.drift() == book.drift()


# ------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "bad, message", [(np.nan, "NaN or inf"), (np.inf, "NaN or inf"), (0.0, "all-zero")]
)
def test_non_finite_and_zero_vectors_are_refused(cosine_book, held_out, bad, message):
    x = held_out[:20].copy()
    if bad == 0.0:
        x[13] = 0.0
    else:
        x[13, 5] = bad
    with pytest.raises(CodebookError, match=f"{message}.*row 113"):
        cosine_book.encode(np.vstack([held_out[:100], x]), batch_size=64)
    with pytest.raises(CodebookError, match=message):
        fit(x.repeat(10, axis=0), small_config())


def test_dimension_mismatch_is_refused(cosine_book):
    with pytest.raises(CodebookError, match="dimension 31.*has 32"):
        cosine_book.encode(np.ones((3, 31), dtype=np.float32))
    with pytest.raises(CodebookError, match="2-D"):
        cosine_book.encode(np.ones(32, dtype=np.float32))


def test_fewer_vectors_than_centroids_is_refused(data):
    with pytest.raises(CodebookError, match="10 vectors for k=16"):
        fit(data[:10], small_config())
    with pytest.raises(CodebookError, match="basepool_size=8 is smaller than k=16"):
        fit(data, small_config(basepool_size=8))


def test_loading_a_file_written_with_other_settings_is_refused(tmp_path, cosine_book):
    path = cosine_book.save(tmp_path / "book.safetensors")
    other = small_config(layers=4, scale_dtype="float16")
    expected = r"other settings: layers=3 \(expected 4\), scale_dtype='float32'"
    with pytest.raises(CodebookError, match=expected):
        ResidualCodebook.load(path, expect=other)


def test_files_that_are_not_codebooks_are_refused(tmp_path):
    from safetensors.numpy import save_file

    plain = tmp_path / "plain.safetensors"
    save_file({"x": np.zeros(3, dtype=np.float32)}, str(plain))
    with pytest.raises(CodebookError, match="without a hymirec codebook header"):
        ResidualCodebook.load(plain)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a safetensors file at all")
    with pytest.raises(CodebookError, match="not a safetensors file"):
        ResidualCodebook.load(junk)
    with pytest.raises(FileNotFoundError):
        ResidualCodebook.load(tmp_path / "missing.safetensors")


def test_decode_checks_codes_and_scales(cosine_book, euclidean_book, held_out):
    codes, scales = cosine_book.encode(held_out[:5])
    with pytest.raises(CodebookError, match="out of range"):
        cosine_book.decode(np.full((5, 3), 16), scales)
    with pytest.raises(CodebookError, match="shape"):
        cosine_book.decode(codes[:, :2], scales)
    with pytest.raises(CodebookError, match="needs scales"):
        cosine_book.decode(codes, None)
    with pytest.raises(CodebookError, match="stores no scales"):
        euclidean_book.decode(codes, scales)


def test_unfitted_codebook_and_bad_settings_are_refused():
    with pytest.raises(CodebookError, match="not fitted"):
        ResidualCodebook().encode(np.ones((2, 4)))
    with pytest.raises(CodebookError, match="k lists 2 values for 3 layers"):
        CodebookConfig(k=[16, 16])
    with pytest.raises(CodebookError, match="layers"):
        CodebookConfig(layers=0)
    with pytest.raises(ValueError, match="unknown key"):
        CodebookConfig.from_dict({"layer": 3})
    assert CodebookConfig.from_dict({"k": [8, 16], "layers": 2}).ks == [8, 16]
