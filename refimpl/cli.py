"""refimpl's command line: figures, theorem checks, predictions, benchmarks (``python cli.py …`` or the
installed ``refimpl …``).

Thin by design: every subcommand is generated from a :class:`refimpl.registry.Spec` (its options from the
fields of the spec's config dataclass), and all the work happens in ``refimpl``. Every argument is checked
and every output location probed before any work starts. Errors are one line ``Error: …`` on stderr,
never a traceback: exit status 2 for bad arguments, 1 for failed work (a failed check, a diverged run),
130 on Ctrl-C and 143 on SIGTERM (temporary files are removed either way).
"""

import dataclasses
import signal
import sys
import typing
from pathlib import Path

import click

from refimpl import fileio, registry
from refimpl.errors import InputError, RunError


class CommaList(click.ParamType):
    """``10,20,40`` -> ``(10, 20, 40)`` with each item converted by `item`; an empty list is an error."""

    def __init__(self, item):
        self.item = item
        self.name = f"{item.__name__}[,{item.__name__}...]"

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        try:
            items = tuple(self.item(v.strip()) for v in str(value).split(",") if v.strip())
        except ValueError:
            self.fail(f"{value!r} is not a comma-separated list of {self.item.__name__}", param, ctx)
        if not items:
            self.fail("needs at least one value", param, ctx)
        return items


def _param_type(tp):
    """click type for a config field annotation: int, float, str, bool, Literal[...], tuple[T, ...]."""
    origin = typing.get_origin(tp)
    if origin is typing.Literal:
        return click.Choice([str(a) for a in typing.get_args(tp)])
    if origin is tuple:
        item = typing.get_args(tp)[0]
        if typing.get_origin(item) is typing.Literal:
            choices = [str(a) for a in typing.get_args(item)]
            return CommaList(_choice_item(choices))
        return CommaList(item)
    return tp


def _choice_item(choices):
    def item(value):
        if value not in choices:
            raise ValueError(value)
        return value
    item.__name__ = "|".join(choices)
    return item


def _config_options(config):
    """One click option per dataclass field; default None so that only given options override."""
    config_cls = config if isinstance(config, type) else type(config)
    hints = typing.get_type_hints(config_cls)
    options = []
    for f in dataclasses.fields(config_cls):
        flag = "--" + f.name.replace("_", "-")
        default = getattr(config, f.name) if not isinstance(config, type) else (
            f.default if f.default is not dataclasses.MISSING else f.default_factory())
        text = f"{f.metadata.get('help', '')} [default: {default}]"
        if hints[f.name] is bool:
            no = "--no-" + f.name.replace("_", "-")
            options.append(click.Option([f"{flag}/{no}", f.name], default=None, help=text))
        else:
            options.append(click.Option([flag, f.name], type=_param_type(hints[f.name]), default=None,
                                        help=text))
    return options


class UsageInputError(click.UsageError):
    """A bad argument found by the library's validation (exit 2, one line)."""

    def __init__(self, message):
        super().__init__(message)
        self.exit_code = 2


def _build_config(spec, kwargs):
    given = {k: v for k, v in kwargs.items() if v is not None and v != ()}
    try:
        return spec.config(**given) if isinstance(spec.config, type) else dataclasses.replace(spec.config,
                                                                                             **given)
    except (InputError, TypeError, ValueError) as e:
        raise UsageInputError(str(e).splitlines()[0]) from None


def _probe_checkpoint(config):
    path = getattr(config, "checkpoint", "")
    if not path:
        return
    if getattr(config, "resume", False):
        if not Path(path).is_file():
            raise UsageInputError(f"--resume: the checkpoint {path} does not exist")
        return
    fileio.probe_file(path, "checkpoint file")


def command_from_spec(spec: registry.Spec, extra_params, make_context, on_result=None, probe=None):
    """A click command running `spec`: its config options plus `extra_params` (context options).

    Order: build and validate the config, build the context, probe outputs (all exit 2 on failure), then
    run (an InputError or RunError raised by the work exits 1)."""
    extra_names = [p.name for p in extra_params]

    def callback(**kwargs):
        ctx_kwargs = {name: kwargs.pop(name) for name in extra_names}
        config = _build_config(spec, kwargs)
        context = make_context(spec, config, **ctx_kwargs)
        try:
            if probe is not None:
                probe(context, config)
        except InputError as e:
            raise UsageInputError(str(e)) from None
        try:
            result = spec.run(config, context)
        except (InputError, RunError) as e:
            raise click.ClickException(str(e).splitlines()[0]) from None
        if on_result is not None:
            on_result(result)

    return click.Command(spec.name, callback=callback, help=spec.help,
                         params=_config_options(spec.config) + list(extra_params))


class SpecGroup(click.Group):
    """A group whose subcommands come from a registry; an unknown or missing name is a one-line error."""

    def __init__(self, *args, kind, specs, make_command, **kwargs):
        super().__init__(*args, no_args_is_help=False, **kwargs)
        self.kind, self.specs, self.make_command = kind, specs, make_command

    def list_commands(self, ctx):
        return list(self.specs())

    def get_command(self, ctx, name):
        specs = self.specs()
        if name not in specs:
            raise click.UsageError(f"unknown {self.kind} {name!r}; choose from: {', '.join(specs)}")
        return self.make_command(specs[name])

    def parse_args(self, ctx, args):
        if not args and not self.invoke_without_command:
            raise click.UsageError(f"missing {self.kind} name; choose from: {', '.join(self.specs())}")
        return super().parse_args(ctx, args)


def _json_flag():
    return click.Option(["--json", "as_json"], is_flag=True, default=False,
                        help="Print one JSON object per line instead of text.")


def _quiet_flag():
    return click.Option(["--quiet", "quiet"], is_flag=True, default=False,
                        help="No progress bar and no side remarks: only the result and errors.")


def _exit_on_failure(ok):
    if ok is False:
        sys.exit(1)


class Terminated(BaseException):
    """SIGTERM, raised in the main thread so that temporary files are removed on the way out."""


def _on_sigterm(signum, frame):
    raise Terminated()


class OneLineErrors(click.Group):
    """The root group: every error is one ``Error: ...`` line on stderr (no usage banner, no traceback)."""

    def parse_args(self, ctx, args):
        if not args:
            raise click.UsageError(f"missing command; choose from: {', '.join(self.list_commands(ctx))}")
        return super().parse_args(ctx, args)

    def main(self, args=None, prog_name=None, standalone_mode=True, **kwargs):
        if not standalone_mode:
            return super().main(args, prog_name, standalone_mode=False, **kwargs)
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
        try:
            rv = super().main(args, prog_name or "refimpl", standalone_mode=False, **kwargs)
        except click.UsageError as e:
            click.echo(f"Error: {e.format_message()}", err=True)
            sys.exit(2)
        except click.ClickException as e:
            click.echo(f"Error: {e.format_message()}", err=True)
            sys.exit(e.exit_code)
        except (click.Abort, KeyboardInterrupt):
            click.echo("Error: interrupted", err=True)
            sys.exit(130)
        except Terminated:
            click.echo("Error: terminated", err=True)
            sys.exit(143)
        finally:
            signal.signal(signal.SIGTERM, previous)
        sys.exit(rv if isinstance(rv, int) else 0)


@click.group(cls=OneLineErrors)
def main():
    """Reference implementation of 'Feature collapse' and 'The persistence of neural collapse despite
    low-rank bias'."""


def _figure_context(spec, config, out, quiet):
    out_dir = out if out is not None else registry.default_out_dir(spec, config)
    return registry.Context(out_dir=out_dir, progress=not quiet, quiet=quiet)


def _probe_figure(context, config):
    fileio.probe_dir(context.out_dir, "output directory (--out)")
    _probe_checkpoint(config)


def _figure_command(spec):
    params = [
        click.Option(["--out", "out"], type=click.Path(path_type=Path), default=None,
                     help="Directory for the PNG and JSON [default: figures/ with the paper's settings, "
                          f"runs/{spec.name}/ with any setting changed]."),
        _quiet_flag(),
    ]
    return command_from_spec(spec, params, _figure_context, probe=_probe_figure)


main.add_command(SpecGroup("figure", kind="figure", specs=registry.figures, make_command=_figure_command,
                           help="Train / compute and draw a figure: <out>/<name>.png and .json."))


def _report_context(spec, config, as_json):
    return registry.Context(json=as_json, progress=not as_json, quiet=as_json)


def _bench_command(spec):
    return command_from_spec(spec, [_json_flag()], _report_context,
                             on_result=_exit_on_failure)                 # a failed pre-timing check: exit 1


@click.pass_context
def _bench_default(ctx, as_json):
    """Time the hot paths against their references (default: the SGD step, `bench sgd`)."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(_bench_command(registry.benches()["sgd"]), as_json=as_json)


main.add_command(SpecGroup("bench", kind="benchmark", specs=registry.benches, make_command=_bench_command,
                           invoke_without_command=True, callback=_bench_default,
                           params=[_json_flag()], help=_bench_default.__doc__))


def _check_command(spec):
    return command_from_spec(spec, [_json_flag()], _report_context, on_result=_exit_on_failure)


main.add_command(SpecGroup("verify", kind="check", specs=registry.checks, make_command=_check_command,
                           help="Check a theorem numerically; exit status 1 when a claim fails."))


def _predict_command():
    from refimpl.feature_collapse import predict
    return command_from_spec(predict.SPEC, [_json_flag(), _quiet_flag()],
                             lambda spec, config, as_json, quiet: registry.Context(
                                 json=as_json, progress=not (as_json or quiet), quiet=as_json or quiet))


main.add_command(_predict_command())


def _reproduce_command():
    from refimpl import reproduce

    def context(spec, config, as_json, quiet):
        return registry.Context(json=as_json, progress=not (as_json or quiet), quiet=as_json or quiet)

    spec = registry.Spec("reproduce", reproduce.ReproduceConfig, reproduce.run,
                         "Reproduce both papers: every figure (or NAMES), the theorem checks and the report, "
                         "from stored runs where they exist; --scheduler local|ADDRESS runs them on Dask.")
    command = command_from_spec(spec, [_json_flag(), _quiet_flag()], context,
                                probe=lambda ctx, config: reproduce.check(config))
    names = click.Argument(["names"], nargs=-1)
    command.params = [p for p in command.params if p.name != "names"] + [names]
    return command


main.add_command(_reproduce_command())
