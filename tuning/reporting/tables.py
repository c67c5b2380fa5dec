"""Aligned text tables, the one way rnntune prints rows for a terminal."""

from collections.abc import Sequence

from tuning.study.confirm import top_trials
from tuning.study.results import ResultsTable

GAP = "+.4f"  # every train - validation gap, everywhere: +0.0718


def format_value(value) -> str:
    """A hyperparameter's value for a person: floats to 3 significant
    digits (0.00173), the rest as they are."""
    if isinstance(value, float):
        return f"{value:.3g}"
    return "" if value is None else str(value)


def format_table(headers: Sequence[str],
                 rows: Sequence[Sequence[str]]) -> str:
    """`rows` of text cells under `headers`, each column padded to its
    widest cell, two spaces apart, no trailing blanks."""
    widths = [max([len(h), *(len(row[i]) for row in rows)])
              for i, h in enumerate(headers)]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths))
                     .rstrip() for line in [headers, *rows])


def format_top(table: ResultsTable, objective: str, n: int = 5) -> str:
    """The best `n` finished trials of a study's table."""
    rows = top_trials(table, objective, n)

    def gap(value):
        return "" if value is None else format(value, GAP)

    return format_table(
        ["trial", objective, "epoch", "final gap", "status", *table.keys],
        [[r["trial_id"], f"{r['best_objective']:.4f}",
          format_value(r.get("best_epoch")),
          gap(r.get("final_accuracy_gap")), r["status"],
          *(format_value(r.get(k)) for k in table.keys)] for r in rows])
