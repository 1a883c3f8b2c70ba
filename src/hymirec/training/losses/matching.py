"""Which interest each target of a window is trained against (DMIL's clustering and matching).

A multi-interest model emits ``s`` interest vectors per example and is trained on the next ``w``
items. DMIL (HyMiRec) first groups those targets by direction -- spherical k-means on their item
vectors, ``s`` groups -- and then gives each group to one interest with the Hungarian algorithm,
maximising the summed cosine between interests and group centroids, so that each interest learns
one coherent group of the user's future items instead of all interests chasing the same ones.
The ComiRec-style alternative skips the grouping: each target goes to its most similar interest.

Everything here is a pure function on detached tensors: the assignment picks which pairs the loss
compares, it is not itself trained.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment

EPS = 1e-12
# Two targets closer than this in cosine are the same direction (typically the same item twice in
# the window): a second centroid on them would only split identical vectors between clusters.
DUPLICATE_TOLERANCE = 1e-5

Matching = Literal["hungarian", "max"]


def farthest_point_init(x: torch.Tensor, valid: torch.Tensor, n_clusters: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Deterministic initial centroids: the first valid target, then each time the valid target
    least similar (lowest max-cosine) to the centroids chosen so far.

    ``x`` ``[P, w, D]`` unit vectors (zero where invalid), ``valid`` ``[P, w]`` bool ->
    centroids ``[P, k, D]`` and ``live`` ``[P, k]`` bool. A centroid is not live (and is zero)
    when no valid target is left that is not a duplicate of a chosen one: a row with fewer
    distinct targets than ``k`` gets that many live centroids.
    """
    rows = torch.arange(len(x), device=x.device)
    first = valid.int().argmax(dim=1)
    centroids = [x[rows, first]]
    live = [valid.any(dim=1)]
    closest = torch.einsum("pwd,pd->pw", x, centroids[0])
    for _ in range(1, n_clusters):
        distance = closest.masked_fill(~valid, torch.inf)
        pick = distance.argmin(dim=1)
        ok = distance[rows, pick] < 1 - DUPLICATE_TOLERANCE
        centroid = x[rows, pick] * ok.unsqueeze(-1)
        centroids.append(centroid)
        live.append(ok)
        closest = torch.maximum(closest, torch.einsum("pwd,pd->pw", x, centroid))
    return torch.stack(centroids, dim=1), torch.stack(live, dim=1)


def _nearest_centroid(x: torch.Tensor, centroids: torch.Tensor, live: torch.Tensor) -> torch.Tensor:
    """``[P, w]`` index of each vector's most similar live centroid (ties go to the lower index)."""
    similarity = torch.einsum("pwd,pkd->pwk", x, centroids)
    return similarity.masked_fill(~live.unsqueeze(1), -torch.inf).argmax(dim=-1)


def _group_sums(x: torch.Tensor, valid: torch.Tensor, labels: torch.Tensor, n_clusters: int) -> torch.Tensor:
    """``[P, k, D]`` sum of each group's valid member vectors."""
    members = F.one_hot(labels, n_clusters).to(x.dtype) * valid.unsqueeze(-1)
    return members.transpose(1, 2) @ x


def spherical_kmeans(
    vectors: torch.Tensor, valid: torch.Tensor, n_clusters: int, iters: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cluster each row's valid vectors by cosine into at most ``n_clusters`` groups.

    ``vectors`` ``[P, w, D]``, ``valid`` ``[P, w]`` bool -> ``labels`` ``[P, w]`` (cluster index,
    -1 where invalid) and ``centroids`` ``[P, k, D]``: the unit mean direction of each group,
    zero for an empty group. Identical vectors always share a label.
    """
    with torch.no_grad():
        x = F.normalize(vectors.detach(), dim=-1, eps=EPS) * valid.unsqueeze(-1)
        centroids, live = farthest_point_init(x, valid, n_clusters)
        labels = _nearest_centroid(x, centroids, live)
        for _ in range(iters):
            sums = _group_sums(x, valid, labels, n_clusters)
            # A group that lost its members (or whose members cancel out) keeps its centroid, so it
            # may win points back next iteration instead of collapsing to a zero vector.
            keep = (sums.norm(dim=-1) > DUPLICATE_TOLERANCE).unsqueeze(-1)
            centroids = torch.where(keep, F.normalize(sums, dim=-1, eps=EPS), centroids)
            labels = _nearest_centroid(x, centroids, live)
        centroids = F.normalize(_group_sums(x, valid, labels, n_clusters), dim=-1, eps=EPS)
        return labels.masked_fill(~valid, -1), centroids


def hungarian_match(similarity: torch.Tensor) -> torch.Tensor:
    """The interest of each group that maximises the summed similarity, one group per interest.

    ``similarity`` ``[P, s, s]`` (interest x group) -> ``[P, s]``: entry ``g`` of a row is the
    interest that group ``g`` is matched to (a permutation of ``0..s-1``).
    """
    scores = similarity.detach().cpu().numpy()
    matched = np.empty(scores.shape[:2], dtype=np.int64)
    for p, matrix in enumerate(scores):
        interest, group = linear_sum_assignment(matrix, maximize=True)
        matched[p, group] = interest
    return torch.from_numpy(matched).to(similarity.device)


def nearest_interest(interests: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """ComiRec-style assignment: each target's most cosine-similar interest.

    ``interests`` ``[P, s, D]``, ``targets`` ``[P, w, D]`` -> ``[P, w]`` interest indices.
    """
    with torch.no_grad():
        r = F.normalize(interests.detach(), dim=-1, eps=EPS)
        t = F.normalize(targets.detach(), dim=-1, eps=EPS)
        return torch.einsum("pwd,psd->pws", t, r).argmax(dim=-1)


def match_targets(
    interests: torch.Tensor, targets: torch.Tensor, valid: torch.Tensor, matching: Matching, cluster_iters: int
) -> torch.Tensor:
    """The interest each target is trained against.

    ``interests`` ``[P, s, D]``, ``targets`` ``[P, w, D]`` item vectors, ``valid`` ``[P, w]`` ->
    ``[P, w]`` interest indices (meaningless where ``valid`` is false). ``hungarian`` clusters the
    targets into ``s`` groups and matches groups to interests; ``max`` picks per target.
    """
    if matching == "max":
        return nearest_interest(interests, targets)
    labels, centroids = spherical_kmeans(targets, valid, interests.shape[1], cluster_iters)
    with torch.no_grad():
        r = F.normalize(interests.detach(), dim=-1, eps=EPS)
        group_interest = hungarian_match(r @ centroids.transpose(1, 2))
    return group_interest.gather(1, labels.clamp(min=0))
