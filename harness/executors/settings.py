"""Executor settings as typed values: one declaration gives the defaults, help, CLI options and env vars.

An executor declares its settings as a frozen pydantic model: each field's type,
default and `description` (the help text). From it, for executor `ray` and field
`gpus`: the option `repro run --ray-gpus` and the variable `REPRO_RAY_GPUS`. A value
given on the command line wins over the environment, which wins over the default.
A value the type refuses is one line naming where it came from and what was expected.
"""
import os
from typing import Any, Dict, List, Mapping, Optional, Tuple, Type

import pydantic

from harness.executors.base import ExecutorError

__all__ = ["ExecutorSettings", "NoSettings", "SettingOption", "env_var", "option_name", "setting_options",
           "load_settings"]


class ExecutorSettings(pydantic.BaseModel):
    """Base of every executor's settings: frozen, and a key it does not know is an error."""
    model_config = pydantic.ConfigDict(frozen=True, extra="forbid")


class NoSettings(ExecutorSettings):
    """For an executor with nothing to set."""


def env_var(executor: str, field: str) -> str:
    """REPRO_RAY_GPUS for executor ray, field gpus."""
    return "REPRO_%s_%s" % (executor.upper(), field.upper())


def option_name(executor: str, field: str) -> str:
    """--ray-gpus for executor ray, field gpus."""
    return "--%s-%s" % (executor, field.replace("_", "-"))


class SettingOption(pydantic.BaseModel):
    """One setting as the CLI offers it."""
    executor: str
    field: str
    option: str       # --ray-gpus
    env: str          # REPRO_RAY_GPUS
    help: str         # the field's description, its default and its variable


def setting_options(executor: str, model: Type[ExecutorSettings]) -> List[SettingOption]:
    """The CLI options of one executor's settings, in declaration order."""
    out = []
    for field, info in model.model_fields.items():
        help_text = "%s [default: %s; env %s]" % (info.description or field, _shown(info.default),
                                                  env_var(executor, field))
        out.append(SettingOption(executor=executor, field=field, option=option_name(executor, field),
                                 env=env_var(executor, field), help=help_text))
    return out


def load_settings(executor: str, model: Type[ExecutorSettings], given: Optional[Mapping[str, Any]] = None,
                  environ: Optional[Mapping[str, str]] = None) -> ExecutorSettings:
    """The settings from `given` (CLI values; None = not given), else the environment, else the defaults.

    Raises:
        ExecutorError: a value the setting's type refuses (one line naming the option or variable).
    """
    environ = os.environ if environ is None else environ
    raw: Dict[str, Tuple[Any, str]] = {}
    for field in model.model_fields:
        if (given or {}).get(field) is not None:
            raw[field] = (given[field], option_name(executor, field))
        elif env_var(executor, field) in environ:
            raw[field] = (environ[env_var(executor, field)], env_var(executor, field))
    try:
        return model(**{field: value for field, (value, _) in raw.items()})
    except pydantic.ValidationError as e:
        error = e.errors()[0]
        field = str(error["loc"][0]) if error["loc"] else ""
        value, source = raw.get(field, (None, field))
        info = model.model_fields.get(field)
        what = (info.description or field).rstrip(".") if info else field
        raise ExecutorError("%s=%r: %s (%s setting %s: %s; default %s)" % (
            source, value, error["msg"][:1].lower() + error["msg"][1:], executor, field, what[:1].lower() + what[1:],
            _shown(info.default) if info else "?")) from None


def _shown(default: Any) -> str:
    return "none" if default is None else ("''" if default == "" else str(default))
