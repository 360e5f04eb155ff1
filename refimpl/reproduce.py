"""``python cli.py reproduce [NAMES…]``: every figure (or the named ones), the theorem checks and Theorem 1's
predictions as independent stored runs, then the figures drawn from them and the reproduction report.

1. **Plan.** Each figure spec splits its work into jobs (:class:`refimpl.tasks.Task`, keyed by what
   determines the result: :mod:`refimpl.runstore`); paper-1 figures give one job per seed.
   ``verify`` is one job (``verify all``), ``predict`` one training run (K = 50, n_spl = 100) besides
   figure 3's.
2. **Run.** :func:`refimpl.tasks.run_tasks` reuses the stored runs and makes the others — in this process,
   on a local Dask cluster or on an existing one — the client storing each as it arrives.
3. **Assemble.** Each figure is drawn from its stored runs (seed 0's picture) into ``figures/`` (with
   ``--quick``: ``runs/quick/``, never ``figures/``), the seeds table written beside them, and the report
   generated (:mod:`refimpl.report`).
"""

import dataclasses
import time
from pathlib import Path

import numpy as np

from refimpl import fileio, plotting, registry, report, runstore, tasks, validate
from refimpl.errors import InputError, require
from refimpl.feature_collapse import experiment, theory, verify
from refimpl.feature_collapse.settings import PREDICTIONS, PRESETS
from refimpl.registry import option

EXTRA = ("verify", "predict")
QUICK_DIR = Path("runs/quick")
PREAMBLE = Path("docs/reproduction-preamble.md")


@dataclasses.dataclass(frozen=True)
class ReproduceConfig:
    names: tuple[str, ...] = option((), "figures and checks to reproduce (default: all); NAME:N trains N "
                                        "seeds of a paper-1 figure")
    seeds: int = option(1, "seeds of each paper-1 figure (0..seeds-1); the PNG shows seed 0")
    scheduler: str = option("none", "none (this process), local (a Dask LocalCluster on 127.0.0.1) or "
                                    "the address of a Dask scheduler (tcp://host:8786, tls://…)")
    workers: int = option(0, "local cluster: worker processes (0: one per core)")
    runs: str = option("runs/store", "the run store (git-ignored)", result=False)
    report: str = option("", "the report (default: docs/reproduction.md; --quick: runs/quick/)", result=False)
    quick: bool = option(False, "tiny sizes (seconds per figure), written to runs/quick/, never to figures/")
    tls_ca_file: str = option("", "TLS: the certificate authority of a tls:// scheduler", result=False)
    tls_client_cert: str = option("", "TLS: this client's certificate", result=False)
    tls_client_key: str = option("", "TLS: this client's key (if not in the certificate file)", result=False)

    def __post_init__(self):
        validate.positive_int("seeds", self.seeds)
        validate.nonneg_int("workers", self.workers)
        known = list(registry.figures()) + list(EXTRA)
        for item in self.names:
            name, _, n = item.partition(":")
            require(name in known, f"unknown name {name!r}; choose from: {', '.join(known)}")
            if n:
                require(name in PRESETS, f"{item}: only paper-1 figures ({', '.join(PRESETS)}) take seeds")
                require(n.isdigit() and int(n) >= 1, f"{item}: the seed count must be a positive integer")
        names = [item.partition(":")[0] for item in self.names]
        require(len(set(names)) == len(names), f"names repeated: {', '.join(self.names)}")

    def targets(self) -> list[str]:
        return [item.partition(":")[0] for item in self.names] or list(registry.figures()) + list(EXTRA)

    def seeds_of(self, name: str) -> int:
        """Seeds of a paper-1 figure: its NAME:N, else --seeds."""
        for item in self.names:
            head, _, n = item.partition(":")
            if head == name and n:
                return int(n)
        return self.seeds

    def security(self):
        given = {k: getattr(self, k) for k in ("tls_ca_file", "tls_client_cert", "tls_client_key")
                 if getattr(self, k)}
        return given or None

    def out_dir(self) -> Path:
        return QUICK_DIR if self.quick else registry.FIGURES_DIR

    def report_path(self) -> Path:
        return Path(self.report) if self.report else (QUICK_DIR / "reproduction.md" if self.quick
                                                      else Path("docs/reproduction.md"))


def _figure_config(spec: registry.Spec, quick: bool):
    base = spec.defaults()
    return dataclasses.replace(base, **spec.quick) if quick else base


def _extra_jobs(name: str, cfg: ReproduceConfig) -> list:
    if name == "verify":
        settings = dataclasses.asdict(verify.AllConfig(starts=1, perturbations=4) if cfg.quick
                                      else verify.AllConfig())
        return [tasks.job("verify", settings, 0, verify.all_records, (settings,), label="verify all")]
    k50 = dataclasses.replace(PRESETS["fig3"], K=PREDICTIONS["k50"]["K"], n_spl=PREDICTIONS["k50"]["n_spl"])
    if cfg.quick:
        k50 = dataclasses.replace(k50, **registry.figures()["fig3"].quick, n_spl=5)
    return experiment.jobs("predict-k50", k50, [0])


def plan(cfg: ReproduceConfig) -> dict[str, tuple]:
    """{name: (spec or None, its config, its jobs)} for every target, in order."""
    specs = registry.figures()
    out = {}
    for name in cfg.targets():
        if name in specs:
            fig_cfg = _figure_config(specs[name], cfg.quick)
            seeds = range(cfg.seeds_of(name)) if name in PRESETS else [getattr(fig_cfg, "seed", 0) or 0]
            jobs = specs[name].jobs or (lambda c, s, n=name: figure_jobs(n, c, s))
            out[name] = (specs[name], fig_cfg, jobs(fig_cfg, seeds))
        else:
            out[name] = (None, None, _extra_jobs(name, cfg))
    return out


def _probe(cfg: ReproduceConfig):
    fileio.probe_dir(cfg.out_dir(), "figure directory")
    fileio.probe_file(cfg.report_path(), "report file")
    fileio.probe_dir(cfg.runs, "run store (--runs)")


def _predictions() -> dict:
    return {name: theory.theorem1(3, 1200, 15, s["K"], 1e-3).c for name, s in PREDICTIONS.items()}


def run(cfg: ReproduceConfig, ctx) -> dict:
    """Plan, run (reusing stored runs), assemble the figures, write the seeds table and the report."""
    _probe(cfg)
    t0 = time.perf_counter()
    todo = plan(cfg)
    store = runstore.RunStore(cfg.runs, warn=ctx.info)
    all_jobs = [job for _, _, jobs in todo.values() for job in jobs]
    results = tasks.run_tasks(all_jobs, store, scheduler=cfg.scheduler, workers=cfg.workers or None,
                              security=cfg.security(), progress=ctx.progress, log=ctx.info)
    fig_ctx = dataclasses.replace(ctx, out_dir=cfg.out_dir(), json=False, quiet=True)
    records: dict[str, list[dict]] = {}
    for name, (spec, fig_cfg, jobs) in todo.items():
        runs = [results.runs[j.key] for j in jobs]
        records[name] = [r.record for r in runs]
        if spec is not None:
            (spec.assemble or (lambda c, r, x, n=name: figure_assemble(n, c, r, x)))(fig_cfg, runs, fig_ctx)
    if "predict" in todo:
        records["predict-k50"] = records.pop("predict")
        records["predict"] = [_predictions()]
    seeds = report.seeds_table(records, [n for n in PRESETS if n in records])
    if seeds:
        plotting.write_record(cfg.out_dir() / "seeds.json", {"figures": seeds})
    rows = report.compare(records)
    text = report.render(_preamble(), rows, seeds, report.extra_sections(records))
    fileio.write_text(cfg.report_path(), text)
    summary = {"ran": len(results.ran), "reused": len(results.reused), "scheduler": results.scheduler,
               "report": str(cfg.report_path()), "wall_seconds": time.perf_counter() - t0,
               "verdicts": {v: sum(r["verdict"] == v for r in rows) for v in ("agree", "differ")}}
    ctx.emit(f"reproduce: {results.summary()}; {summary['verdicts']['agree']} published numbers agree, "
             f"{summary['verdicts']['differ']} differ; report -> {cfg.report_path()} "
             f"({summary['wall_seconds']:.0f} s)", summary)
    return summary


def _preamble() -> str:
    if PREAMBLE.is_file():
        return PREAMBLE.read_text()
    return "# Reproduction report\n"


def check(cfg: ReproduceConfig) -> None:
    """Everything checkable before any work: names, outputs, the scheduler string."""
    _probe(cfg)
    if cfg.scheduler not in ("none", "local") and "://" not in cfg.scheduler:
        raise InputError(f"scheduler must be none, local or an address such as tcp://host:8786, "
                         f"got {cfg.scheduler!r}")
    if cfg.workers and cfg.scheduler != "local":
        raise InputError("--workers sizes a local cluster: it needs --scheduler local")


class _Silent:
    progress, json, quiet = False, True, True

    def __init__(self, out_dir: Path):
        self.out_dir = out_dir

    def emit(self, text, record=None):
        pass

    def info(self, text):
        pass


def figure_task(name: str, settings: dict):
    """A ``reproduce`` task for a figure that computes in one piece: run it into a temporary directory and
    return (its JSON record, {"png": the PNG's bytes as uint8}) — the client writes both."""
    import tempfile

    spec = registry.figures()[name]
    config = (spec.config(**settings) if isinstance(spec.config, type)
              else dataclasses.replace(spec.config, **settings))
    with tempfile.TemporaryDirectory() as tmp:
        spec.run(config, _Silent(Path(tmp)))
        record = runstore.loads_strict((Path(tmp) / f"{name}.json").read_text())
        png = np.frombuffer((Path(tmp) / f"{name}.png").read_bytes(), dtype=np.uint8).copy()
    return record, {"png": png}


def figure_jobs(name: str, config, seeds) -> list:
    """One job computing the whole figure (its own seeds, if any, are part of its settings)."""
    settings = registry.result_settings(config)
    return [tasks.job(name, settings, getattr(config, "seed", 0) or 0, figure_task, (name, settings),
                      label=name)]


def figure_assemble(name: str, config, runs, ctx) -> dict:
    """Write the stored PNG and JSON of a one-piece figure."""
    record, png = runs[0].record, runs[0].arrays["png"]
    fileio.write_bytes(ctx.out_dir / f"{name}.png", png.tobytes())
    plotting.write_record(ctx.out_dir / f"{name}.json", record)
    return record
