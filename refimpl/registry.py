"""Named runnable items behind the CLI: figures, benchmarks, theorem checks.

Each item is a :class:`Spec`: a name, a dataclass of options whose defaults are the paper's settings
(the CLI turns every field into an option, its ``metadata["help"]`` into the help text) and a run
function ``run(config, ctx)``. Registries are plain ``{name: Spec}`` dictionaries built from an
explicit list of modules, each exposing a list ``SPECS``; nothing is discovered by ``exec``/``eval``.

A figure run with the paper's settings (:func:`is_paper_setting`) writes into ``figures/``; with any
setting changed, into ``runs/<name>/`` (git-ignored), so that the committed figures change only on purpose.
"""

import dataclasses
import importlib
import sys
from collections.abc import Callable
from pathlib import Path

from refimpl import fileio

FIGURES_DIR = Path("figures")
RUNS_DIR = Path("runs")


@dataclasses.dataclass(frozen=True)
class Spec:
    """A runnable item: ``run(config, ctx)``.

    ``config`` is a dataclass (its field defaults are the defaults) or an instance of one (a preset:
    its values are the defaults, as for figures sharing one config class); the CLI builds the instance
    passed to ``run`` from the options given. ``run`` computes in this process; ``jobs`` and ``assemble``
    split the same work into independent runs (stored by ``reproduce``, possibly made on a cluster) and the
    drawing of their results — ``assemble`` writes the same files ``run`` writes.
    """

    name: str
    config: object
    run: Callable
    help: str = ""
    jobs: Callable | None = None       # jobs(config, seeds) -> [tasks.Task]: its independent runs
    assemble: Callable | None = None   # assemble(config, runs, ctx) -> summary: draw, write from the runs
    quick: dict = dataclasses.field(default_factory=dict)   # tiny sizes for `reproduce --quick`

    def defaults(self):
        """The configuration with every option at its default (the paper's settings)."""
        return self.config() if isinstance(self.config, type) else self.config


@dataclasses.dataclass
class Context:
    """What a run needs from its caller: where to write, whether to draw a progress bar, how to print.

    ``emit(text, record)`` prints ``text`` for a human, or ``record`` as one strict JSON line when ``json``
    is set (records only: a ``None`` record prints nothing in JSON mode). ``info`` is a side remark on
    stderr, silent with ``quiet`` or ``json``.
    """

    out_dir: Path = FIGURES_DIR
    progress: bool = True
    json: bool = False
    quiet: bool = False

    def emit(self, text: str, record: dict | None = None) -> None:
        if self.json:
            if record is not None:
                print(fileio.dumps(record, indent=None), flush=True)
        else:
            print(text, flush=True)

    def info(self, text: str) -> None:
        """A side remark for a human (stderr, so that JSON on stdout stays clean)."""
        if not (self.json or self.quiet):
            print(text, file=sys.stderr, flush=True)


def option(default, help: str, result: bool = True):
    """A config dataclass field with its CLI help text: ``x: int = option(3, "what x is")``.

    ``result=False`` marks a field that does not change what the run computes (a checkpoint path): it is
    left out when deciding whether a run has the paper's settings.
    """
    return dataclasses.field(default=default, metadata={"help": help, "result": result})


def result_settings(config) -> dict:
    """The fields of `config` that determine its result, as a dict."""
    return {f.name: getattr(config, f.name) for f in dataclasses.fields(config)
            if f.metadata.get("result", True)}


def is_paper_setting(spec: Spec, config) -> bool:
    """Whether `config` computes what the spec's defaults (the paper's settings) compute."""
    return result_settings(config) == result_settings(spec.defaults())


def default_out_dir(spec: Spec, config) -> Path:
    """``figures/`` for the paper's settings, ``runs/<name>/`` for anything else."""
    return FIGURES_DIR if is_paper_setting(spec, config) else RUNS_DIR / spec.name


def collect(module_names) -> dict[str, Spec]:
    """``{name: Spec}`` from the ``SPECS`` lists of the named modules, in order."""
    out: dict[str, Spec] = {}
    for module_name in module_names:
        for spec in importlib.import_module(module_name).SPECS:
            if spec.name in out:
                raise RuntimeError(f"duplicate name {spec.name!r} in {module_name}")
            out[spec.name] = spec
    return out


# The modules that contribute to each registry (append here when adding a family).
FIGURE_MODULES = ["refimpl.figures.data_model", "refimpl.figures.feature_collapse",
                  "refimpl.figures.theorem2_norms",
                  "refimpl.figures.dufm_thresholds", "refimpl.figures.dufm_hessian",
                  "refimpl.figures.dufm_rank", "refimpl.figures.dufm_prevalence", "refimpl.figures.dufm_relu"]
BENCH_MODULES = ["refimpl.bench.sgd", "refimpl.bench.exact", "refimpl.bench.dufm"]
CHECK_MODULES: list[str] = ["refimpl.feature_collapse.verify"]


def figures() -> dict[str, Spec]:
    return collect(FIGURE_MODULES)


def benches() -> dict[str, Spec]:
    return collect(BENCH_MODULES)


def checks() -> dict[str, Spec]:
    return collect(CHECK_MODULES)
