"""The reproduction report: every number the papers publish, beside ours, with a tolerance and a verdict.

:data:`PUBLISHED` is the one table of the papers' numbers (with the section or figure each comes from); the
report (``docs/reproduction.md``, written by ``python cli.py reproduce``) is generated from it and from the
stored runs, after a short hand-written preamble (``docs/reproduction-preamble.md``). Where several seeds were
trained, "ours" is their mean ± sd (min–max) and the verdict compares the mean. A number agrees when
|ours − paper| ≤ tolerance (absolute) or ≤ tolerance·|paper| (relative); qualitative claims state the
criterion used. Figure 3 keeps a column with what the authors' own notebook printed.
"""

import dataclasses
from collections.abc import Callable

import numpy as np

from refimpl.feature_collapse.settings import AUTHORS_NOTEBOOK, PAPER, PREDICTIONS


@dataclasses.dataclass(frozen=True)
class Published:
    """A number of a paper: where it is, what it is, its value, how we measure ours, how close is close."""

    source: str                 # "Feature collapse, figure 3"
    quantity: str               # "test accuracy"
    paper: float
    run: str                    # the stored runs it is read from ("fig3", "predict-k50", "dufm-hessian", …)
    measure: Callable           # record -> our value (float)
    tolerance: float
    relative: bool = False
    notebook: float | None = None
    fmt: str = "{:.4g}"


def _item(key, i=None):
    return lambda r: r[key] if i is None else r[key][i]


F1 = "Feature collapse"
PUBLISHED = [
    Published(f"{F1}, figure 3", "test accuracy", PAPER["fig3"]["test_accuracy"], "fig3",
              _item("test_accuracy"), 0.01, notebook=AUTHORS_NOTEBOOK["fig3"]["test_accuracy"], fmt="{:.2%}"),
    *[Published(f"{F1}, figure 3", f"σ{i + 1} of the word PCA", PAPER["fig3"]["sigma_words"][i], "fig3",
                _item("sigma_words", i), 0.05, relative=True,
                notebook=AUTHORS_NOTEBOOK["fig3"]["sigma_words"][i]) for i in range(2)],
    Published(f"{F1}, figure 3", "σ3 of the word PCA", PAPER["fig3"]["sigma_words"][2], "fig3",
              _item("sigma_words", 2), 0.01, notebook=AUTHORS_NOTEBOOK["fig3"]["sigma_words"][2]),
    *[Published(f"{F1}, figure 3", f"σ{i + 1} of the u_kl PCA", PAPER["fig3"]["sigma_u"][i], "fig3",
                _item("sigma_u", i), 0.05, relative=True,
                notebook=AUTHORS_NOTEBOOK["fig3"]["sigma_u"][i]) for i in range(2)],
    Published(f"{F1}, figure 3", "σ3 of the u_kl PCA", PAPER["fig3"]["sigma_u"][2], "fig3",
              _item("sigma_u", 2), 0.01, notebook=AUTHORS_NOTEBOOK["fig3"]["sigma_u"][2]),
    Published(f"{F1}, §3.1 (figure 3's run)", "mean word-embedding norm ‖w‖", 1.41, "fig3",
              _item("word_norm_mean"), 0.03),
    Published(f"{F1}, §3.1 (figure 3's run)", "sd of the word-embedding norms", 0.13, "fig3",
              _item("word_norm_std"), 0.03),
    Published(f"{F1}, figure 4(a)", "test accuracy", PAPER["fig4a"]["test_accuracy"], "fig4a",
              _item("test_accuracy"), 0.01, fmt="{:.2%}"),
    Published(f"{F1}, figure 4(b)", "test accuracy", PAPER["fig4b"]["test_accuracy"], "fig4b",
              _item("test_accuracy"), 0.03, fmt="{:.2%}"),
    Published(f"{F1}, figure 4(c)", "test accuracy", PAPER["fig4c"]["test_accuracy"], "fig4c",
              _item("test_accuracy"), 0.01, fmt="{:.2%}"),
    Published(f"{F1}, §3.1, Theorem 1", "predicted ‖w‖, K = 1000", PREDICTIONS["fig3"]["paper_prediction"],
              "predict", _item("fig3"), 1e-5, relative=True, fmt="{:.6g}"),
    Published(f"{F1}, §3.1, Theorem 1", "predicted ‖w‖, K = 50", PREDICTIONS["k50"]["paper_prediction"],
              "predict", _item("k50"), 1e-5, relative=True, fmt="{:.6g}"),
    Published(f"{F1}, §3.1 (K = 50, n_spl = 100)", "mean word-embedding norm ‖w‖",
              PREDICTIONS["k50"]["paper_observed"][0], "predict-k50", _item("word_norm_mean"), 0.03),
    Published(f"{F1}, §3.1 (K = 50, n_spl = 100)", "sd of the word-embedding norms",
              PREDICTIONS["k50"]["paper_observed"][1], "predict-k50", _item("word_norm_std"), 0.03),
]


def stats(values) -> dict:
    """mean, sd (population, over seeds), min, max, n of a list of numbers (None entries skipped)."""
    v = np.array([x for x in values if x is not None], dtype=np.float64)
    if v.size == 0:
        return {"mean": None, "sd": None, "min": None, "max": None, "n": 0}
    return {"mean": float(v.mean()), "sd": float(v.std()), "min": float(v.min()), "max": float(v.max()),
            "n": int(v.size)}


def _show(s: dict, fmt: str, count: bool = True) -> str:
    if s["n"] == 0:
        return "—"
    if s["n"] == 1:
        return fmt.format(s["mean"])
    seeds = f", {s['n']} seeds" if count else ""
    return (f"{fmt.format(s['mean'])} ± {fmt.format(s['sd'])} "
            f"({fmt.format(s['min'])}–{fmt.format(s['max'])}{seeds})")


def agrees(row: Published, ours: float | None) -> bool | None:
    """Whether our value is within the row's tolerance of the paper's (None when we have no value)."""
    if ours is None:
        return None
    bound = row.tolerance * (abs(row.paper) if row.relative else 1.0)
    return abs(ours - row.paper) <= bound


def compare(records: dict[str, list[dict]]) -> list[dict]:
    """One dict per published number: source, quantity, paper, ours (stats over seeds), tolerance, verdict.

    `records` maps a run name ("fig3", …) to its records (one per seed); rows without records are skipped.
    """
    out = []
    for row in PUBLISHED:
        recs = records.get(row.run, [])
        if not recs:
            continue
        s = stats([row.measure(r) for r in recs])
        ok = agrees(row, s["mean"])
        out.append({"source": row.source, "quantity": row.quantity, "paper": row.paper, "ours": s,
                    "tolerance": row.tolerance, "relative": row.relative, "notebook": row.notebook,
                    "verdict": None if ok is None else ("agree" if ok else "differ"),
                    "text": {"paper": row.fmt.format(row.paper), "ours": _show(s, row.fmt),
                             "notebook": "" if row.notebook is None else row.fmt.format(row.notebook),
                             "tolerance": (f"±{row.tolerance:g} rel." if row.relative
                                           else f"±{row.fmt.format(row.tolerance)}")}})
    return out


SEED_FIELDS = [("train accuracy", _item("train_accuracy"), "{:.2%}"),
               ("test accuracy", _item("test_accuracy"), "{:.2%}"),
               ("final train loss", _item("train_loss"), "{:.4g}"),
               *[(f"σ{i + 1} words", _item("sigma_words", i), "{:.4g}") for i in range(3)],
               *[(f"σ{i + 1} u_kl", _item("sigma_u", i), "{:.4g}") for i in range(3)],
               ("mean ‖w‖", _item("word_norm_mean"), "{:.4g}"), ("sd ‖w‖", _item("word_norm_std"), "{:.4g}")]


def seeds_table(records: dict[str, list[dict]], names) -> dict:
    """Per figure: stats over its seeds of accuracies, final loss, σ1..σ3 of both PCAs, word norms."""
    return {name: {label: stats([f(r) for r in records[name]]) for label, f, _ in SEED_FIELDS}
            for name in names if records.get(name)}


def render(preamble: str, rows: list[dict], seeds: dict, extra: list[str]) -> str:
    """The markdown report: preamble, the published numbers, the seeds table, then `extra` sections."""
    lines = [preamble.rstrip(), "", "## The published numbers", "",
             "| source | quantity | paper | ours | tolerance | verdict | authors' notebook |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        t = r["text"]
        lines.append(f"| {r['source']} | {r['quantity']} | {t['paper']} | {t['ours']} | {t['tolerance']} | "
                     f"**{r['verdict']}** | {t['notebook']} |")
    if seeds:
        fields = [label for label, _, _ in SEED_FIELDS]
        fmts = {label: fmt for label, _, fmt in SEED_FIELDS}
        lines += ["", "## Seeds", "",
                  "Mean ± sd (min–max) over the trained seeds; each figure's PNG is seed 0's.",
                  "", "| figure | seeds | " + " | ".join(fields) + " |", "|---|---|" + "---|" * len(fields)]
        for name, table in seeds.items():
            n = max(s["n"] for s in table.values())
            lines.append(f"| {name} | {n} | " + " | ".join(_show(table[f], fmts[f], count=False)
                                                         for f in fields) + " |")
    return "\n".join(lines + [""] + extra) + "\n"


def _cells(table) -> set:
    return {(i, j) for i, row in enumerate(table) for j, v in enumerate(row) if v}


def _beats(gaps) -> list:
    return [[g is not None and g < -1e-12 for g in row] for row in gaps]


def dufm_rows(records: dict[str, list[dict]]) -> list[str]:
    """Table rows (markdown) for the DUFM paper's claims, from the figures' records that are present."""
    rows = []
    thr = (records.get("dufm-thresholds") or [None])[0]
    if thr:
        Ks, Ls = thr["K"], thr["L"]
        for name, theorem, statement, exact in (
                ("lr", "Theorem 1 (linear)", "K ≥ 4, L ≥ 3 or K ≥ 6, L = 2", True),
                ("relu", "Theorem 6 (ReLU, B.7)", "L = 4, K ≥ 16 or L ≥ 5, K ≥ 10", False)):
            paper = _cells(thr["rules"][name]["paper"])
            for lam, gaps in thr["relative_gap"][name].items():
                ours = _cells(_beats(gaps))
                ok = ours == paper if exact else paper <= ours
                extra = sorted((Ks[i], Ls[j]) for i, j in ours - paper)
                more = f"; also (K, L) = {', '.join(map(str, extra[:8]))}{' …' if len(extra) > 8 else ''}"
                missing = sorted((Ks[i], Ls[j]) for i, j in paper - ours)
                rows.append(f"| {theorem}, λ = {lam} | a structure beats DNC for {statement} "
                            f"({len(paper)} cells of K ≤ {Ks[-1]}, L ≤ {Ls[-1]}) | {len(ours)} cells"
                            + (more if extra else "") + (f"; not {missing[:4]}" if missing else "")
                            + f" | {'agree' if ok else 'differ'} |")
    hes = (records.get("dufm-hessian") or [None])[0]
    if hes:
        lam_c = ", ".join(f"L = {L}: {v:.4g}" for L, v in hes["lam_c"].items())
        rows.append(f"| Theorem 4, K = {hes['config']['K']} | DNC critical point is a local minimum for "
                    f"suitably small λ | a local minimum iff λ ≤ λ_c ({lam_c}); Hessian counts "
                    f"{'match' if hes['counts_match_prediction'] else 'DO NOT match'} the reduced analysis | "
                    f"{'agree' if hes['counts_match_prediction'] else 'differ'} |")
    from refimpl.dufm import orbits, structures
    params = structures.balanced_params(2.0 * structures.dnc_matrix(4), 2, 4)
    paper, ours = orbits.paper_dnc_dimension(4, 4, 2), orbits.orbit_dimension(params)
    rows.append(f"| Theorem 5 (B.6), K = d = 4, L = 2 | dimension of the DNC solution set "
                f"L((K−1)d − (K−1)²) = {paper} | {ours} (rank of the O(d)^L orbit's tangent space; "
                f"L(rd − r(r+1)/2)) | "
                f"{'agree' if ours == paper else 'differ'} |")
    return rows


def extra_sections(records: dict[str, list[dict]]) -> list[str]:
    """The theorem checks and the DUFM claims, as markdown sections (those whose runs are present)."""
    out = []
    ver = (records.get("verify") or [None])[0]
    if ver:
        out += ["## Theorems 1–3 of Feature collapse, checked (`python cli.py verify all`)", "",
                "| theorem | claims | result |", "|---|---|---|"]
        for check in ver["checks"]:
            n_ok = sum(c["ok"] for c in check["claims"])
            out.append(f"| {check['check']} | {n_ok} of {len(check['claims'])} hold | "
                       f"**{'PASS' if check['passed'] else 'FAIL'}** |")
        out.append("")
    rows = dufm_rows(records)
    if rows:
        out += ["## The persistence of neural collapse (the DUFM)", "",
                "| claim | paper | ours | verdict |", "|---|---|---|---|", *rows, ""]
    rank = (records.get("dufm-rank") or [None])[0]
    if rank and "per_L" in rank:
        ranks = ", ".join(f"L={L}: {v.get('median_rank')}" for L, v in rank["per_L"].items())
        out += [f"`dufm-rank` (median numerical rank of the trained Z): `{ranks}`", ""]
    cells = [c for c in records.get("dufm-prevalence") or [] if "dnc" in c]
    if cells:
        out += prevalence_table(cells)
    return out


def prevalence_table(cells: list[dict]) -> list[str]:
    """`dufm-prevalence`'s cells (one record per (λ, lr, d)) as a table: runs ending at DNC, per λ and lr
    (rows) and width d (columns)."""
    ds = sorted({c["d"] for c in cells})
    by = {(c["lam"], c["lr"], c["d"]): c for c in cells}
    rows = sorted({(c["lam"], c["lr"]) for c in cells})
    runs = sorted({c["runs"] for c in cells})
    out = [f"`dufm-prevalence` (runs ending at DNC, of {'/'.join(map(str, runs))} per cell):", "",
           "| λ | lr | " + " | ".join(f"d = {d}" for d in ds) + " |", "|---|---|" + "---|" * len(ds)]
    for lam, lr in rows:
        counts = [str(by[(lam, lr, d)]["dnc"]) if (lam, lr, d) in by else "—" for d in ds]
        out.append(f"| {lam:g} | {lr:g} | " + " | ".join(counts) + " |")
    return out + [""]
