#!/usr/bin/env python
"""refimpl's command line: figures, benchmarks and theorem checks.

Thin by design: every subcommand is generated from a :class:`refimpl.registry.Spec` (its options from
the fields of the spec's config dataclass), and all the work happens in ``refimpl``. Bad input gives a
one-line ``Error: ...`` and exit status 1, never a traceback.

    python cli.py figure fig4c            # the main job
    python cli.py figure --help           # the list of figures
    python cli.py bench [sgd|exact|dufm] [--json]
"""

import dataclasses
import sys
import typing
from pathlib import Path

import click

from refimpl import registry
from refimpl.errors import InputError


class CommaList(click.ParamType):
    """``10,20,40`` -> ``(10, 20, 40)`` with each item converted by `item`."""

    def __init__(self, item):
        self.item = item
        self.name = f"{item.__name__}[,{item.__name__}...]"

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        try:
            return tuple(self.item(v) for v in str(value).split(",") if v.strip())
        except ValueError:
            self.fail(f"{value!r} is not a comma-separated list of {self.item.__name__}", param, ctx)


def _param_type(tp):
    """click type for a config field annotation: int, float, str, bool, Literal[...], tuple[T, ...]."""
    origin = typing.get_origin(tp)
    if origin is typing.Literal:
        return click.Choice([str(a) for a in typing.get_args(tp)])
    if origin is tuple:
        return CommaList(typing.get_args(tp)[0])
    return tp


def _config_options(config):
    """One click option per dataclass field; default None so that only given options override.

    `config` is a dataclass (defaults: its field defaults) or an instance of one (defaults: its values).
    """
    config_cls = config if isinstance(config, type) else type(config)
    hints = typing.get_type_hints(config_cls)
    options = []
    for f in dataclasses.fields(config_cls):
        flag = "--" + f.name.replace("_", "-")
        if not isinstance(config, type):
            default = getattr(config, f.name)
        elif f.default is not dataclasses.MISSING:
            default = f.default
        else:
            default = f.default_factory()
        text = f"{f.metadata.get('help', '')} [default: {default}]"
        if hints[f.name] is bool:
            no = "--no-" + f.name.replace("_", "-")
            options.append(click.Option([f"{flag}/{no}", f.name], default=None, help=text))
        else:
            options.append(click.Option([flag, f.name], type=_param_type(hints[f.name]), default=None,
                                        help=text))
    return options


def _build_config(config, kwargs):
    given = {k: v for k, v in kwargs.items() if v is not None}
    return config(**given) if isinstance(config, type) else dataclasses.replace(config, **given)


def command_from_spec(spec: registry.Spec, extra_params, make_context, on_result=None):
    """A click command running `spec`: its config options plus `extra_params` (context options)."""
    extra_names = [p.name for p in extra_params]

    def callback(**kwargs):
        ctx_kwargs = {name: kwargs.pop(name) for name in extra_names}
        try:
            config = _build_config(spec.config, kwargs)
            result = spec.run(config, make_context(**ctx_kwargs))
        except InputError as e:
            raise click.ClickException(str(e)) from None
        if on_result is not None:
            on_result(result)

    return click.Command(spec.name, callback=callback, help=spec.help,
                         params=_config_options(spec.config) + list(extra_params))


class SpecGroup(click.Group):
    """A group whose subcommands come from a registry; an unknown name is a one-line error."""

    def __init__(self, *args, kind, specs, make_command, **kwargs):
        super().__init__(*args, **kwargs)
        self.kind, self.specs, self.make_command = kind, specs, make_command

    def list_commands(self, ctx):
        return list(self.specs())

    def get_command(self, ctx, name):
        specs = self.specs()
        if name not in specs:
            raise click.ClickException(f"unknown {self.kind} {name!r}; choose from: {', '.join(specs)}")
        return self.make_command(specs[name])


def _json_flag():
    return click.Option(["--json", "as_json"], is_flag=True, default=False,
                        help="Print one JSON object per line instead of text.")


def _exit_on_failure(ok):
    if ok is False:
        sys.exit(1)


class OneLineErrors(click.Group):
    """The root group: a usage error (bad option value, unknown option) is one ``Error: ...`` line on
    stderr and exit status 2, without click's usage banner; other errors keep click's one-line form."""

    def main(self, *args, standalone_mode=True, **kwargs):
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            rv = super().main(*args, standalone_mode=False, **kwargs)
        except click.UsageError as e:
            click.echo(f"Error: {e.format_message()}", err=True)
            sys.exit(e.exit_code)
        except click.ClickException as e:
            e.show()
            sys.exit(e.exit_code)
        except click.Abort:
            click.echo("Aborted!", err=True)
            sys.exit(1)
        sys.exit(rv if isinstance(rv, int) else 0)


@click.group(cls=OneLineErrors)
def main():
    """Reference implementation of 'Feature collapse' and 'The persistence of neural collapse'."""


def _figure_command(spec):
    params = [
        click.Option(["--out", "out"], type=click.Path(file_okay=False, path_type=Path),
                     default=Path("figures"), show_default=True, help="Directory for the PNG and JSON."),
        click.Option(["--quiet", "quiet"], is_flag=True, default=False, help="No progress bar."),
    ]
    return command_from_spec(
        spec, params, lambda out, quiet: registry.Context(out_dir=out, progress=not quiet))


main.add_command(SpecGroup("figure", kind="figure", specs=registry.figures,
                           make_command=_figure_command,
                           help="Train / compute and draw a figure: figures/<name>.png and .json."))


def _bench_command(spec):
    return command_from_spec(spec, [_json_flag()],
                             lambda as_json: registry.Context(json=as_json, progress=not as_json),
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
    return command_from_spec(spec, [_json_flag()],
                             lambda as_json: registry.Context(json=as_json, progress=not as_json),
                             on_result=_exit_on_failure)


main.add_command(SpecGroup("verify", kind="check", specs=registry.checks, make_command=_check_command,
                           help="Check a theorem numerically; exit status 1 when a claim fails."))


def _predict_command():
    from refimpl.feature_collapse import predict
    return command_from_spec(predict.SPEC, [_json_flag()],
                             lambda as_json: registry.Context(json=as_json, progress=not as_json))


main.add_command(_predict_command())


if __name__ == "__main__":
    main()
