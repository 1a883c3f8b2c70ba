"""Plain-text (Markdown) tables of evaluation metrics."""

from __future__ import annotations


def metrics_table(rows: dict[str, dict[str, float]], ks: list[int] | tuple[int, ...]) -> str:
    """A Markdown table: one row per named metrics dict, columns R@K then N@K, 4 decimals."""
    names = [f"recall@{k}" for k in ks] + [f"ndcg@{k}" for k in ks]
    header = "| split | " + " | ".join(n.replace("recall", "R").replace("ndcg", "N") for n in names) + " |"
    lines = [header, "|" + "---|" * (len(names) + 1)]
    for label, metrics in rows.items():
        lines.append(f"| {label} | " + " | ".join(f"{metrics[n]:.4f}" for n in names) + " |")
    return "\n".join(lines)
