"""Building a pydantic model from values the gateway has already validated, without validating them again.

Some models are built on every message from parts that are valid by construction, such as the audit records of
a referral's decision and disclosure, from a validated envelope and the gateway's own decision (the envelope has
constructors of its own: ``Envelope.assemble`` and ``Envelope.from_validated``). Validating those parts again costs
CPU on every referral and can change nothing.
pydantic's own way to skip validation, ``model_construct``, is written in Python and walks every field's aliases
and defaults on each call, which makes it slower than validating (17 us against 9 us of CPU for an audit record;
6 us with this builder, 2.5 of them the record id's uuid4).
:class:`TrustedBuilder` does what ``model_construct`` does for the simple models it accepts, with the defaults
worked out once per model: the instance has the same field values, the same set of fields given and the same
private attributes as one validated from the same values, so it compares equal to it and dumps the same bytes.

It accepts only models where that holds without validation: no aliases, no ``extra="allow"``, defaults that are
immutable (or default factories that take no argument), and no ``model_post_init`` other than pydantic's own
initialisation of private attributes; anything else is refused when the builder is made, not silently built.
It never checks a value: use it only for values that the gateway itself produced from validated models and
typed code (mypy checks the callers), never for anything a partner sent. Each use keeps a test that builds the
same model both ways and compares the results.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

__all__ = ["TrustedBuilder"]

Model = TypeVar("Model", bound=BaseModel)

_IMMUTABLE_DEFAULTS = (type(None), bool, int, float, str, bytes)
"""Types of defaults that every instance may share, alone or in tuples and frozensets of them (pydantic copies
a default only when it is mutable)."""

_MISSING = object()

_set = object.__setattr__  # a frozen model refuses setattr; pydantic's model_construct writes the same way


def _only_sets_private_attributes(model: type[BaseModel]) -> bool:
    """Whether the model's ``model_post_init`` is pydantic's own set-up of private attributes (pydantic installs
    it on a model that declares private attributes and no ``model_post_init`` of its own)."""
    post_init = model.model_post_init
    return (getattr(post_init, "__module__", None), getattr(post_init, "__qualname__", None)) == (
        "pydantic._internal._model_construction", "init_private_attributes")


class TrustedBuilder(Generic[Model]):
    """Builds ``model`` instances from trusted values (see the module docstring): ``builder(**values)``, or
    ``builder(private, **values)`` to give private attributes too."""

    def __init__(self, model: type[Model]) -> None:
        if model.model_config.get("extra") == "allow" or model.__pydantic_root_model__:
            raise TypeError(f"{model.__name__}: extra fields or a root model need model_construct")
        if model.__pydantic_post_init__ is not None and not _only_sets_private_attributes(model):
            raise TypeError(f"{model.__name__}: model_post_init may change values; validate instead")
        template: dict[str, Any] = {}
        factories: list[tuple[str, Callable[[], Any]]] = []
        for name, field in model.model_fields.items():
            if field.alias not in (None, name) or field.validation_alias not in (None, name):
                raise TypeError(f"{model.__name__}.{name}: aliased fields need model_construct")
            if field.default_factory is not None:
                if field.default_factory_takes_validated_data:
                    raise TypeError(f"{model.__name__}.{name}: a default factory that reads data needs validation")
                factories.append((name, field.default_factory))  # type: ignore[arg-type]
                template[name] = _MISSING
            elif field.is_required():
                template[name] = _MISSING
            else:
                template[name] = _shared_default(model, name, field.default)
        private: dict[str, Any] = {}
        for name, attribute in model.__private_attributes__.items():
            if attribute.default_factory is not None:
                raise TypeError(f"{model.__name__}.{name}: a private default factory needs model_construct")
            private[name] = _shared_default(model, name, attribute.default)
        self._model = model
        self._template = template
        self._names = frozenset(template)
        self._required = frozenset(name for name, field in model.model_fields.items() if field.is_required())
        self._factories = tuple(factories)
        self._private = private if model.__private_attributes__ else None
        """The private attributes' defaults, as pydantic's set-up after validation gives them (None: the model
        has none)."""

    def __call__(self, private: Mapping[str, Any] | None = None, /, **values: Any) -> Model:
        """The model holding ``values`` (and the defaults of the fields not given) and the private attributes
        ``private`` (the others at their defaults), unvalidated; a missing required field or an unknown field or
        private attribute is a programming error and raises :class:`TypeError`."""
        if not self._required <= values.keys() or not values.keys() <= self._names:
            missing = sorted(self._required - values.keys())
            unknown = sorted(values.keys() - self._names)
            raise TypeError(f"{self._model.__name__}: missing {missing}, unknown {unknown}")
        data = dict(self._template)
        data.update(values)
        for name, factory in self._factories:
            if name not in values:
                data[name] = factory()
        instance = self._model.__new__(self._model)
        _set(instance, "__dict__", data)
        _set(instance, "__pydantic_fields_set__", set(values))
        _set(instance, "__pydantic_extra__", None)
        _set(instance, "__pydantic_private__", self._private_values(private))
        return instance

    def _private_values(self, given: Mapping[str, Any] | None) -> dict[str, Any] | None:
        if self._private is None:
            if given:
                raise TypeError(f"{self._model.__name__} has no private attributes")
            return None
        values = dict(self._private)
        if given:
            if not given.keys() <= values.keys():
                unknown = sorted(given.keys() - values.keys())
                raise TypeError(f"{self._model.__name__}: unknown private attributes {unknown}")
            values.update(given)
        return values


def _shared_default(model: type[BaseModel], name: str, default: Any) -> Any:
    """A default every instance may share: pydantic copies a default only when it is mutable."""
    if not _immutable(default):
        raise TypeError(f"{model.__name__}.{name}: a mutable default needs model_construct to copy it")
    return default


def _immutable(value: object) -> bool:
    if isinstance(value, tuple | frozenset):
        return all(_immutable(item) for item in value)
    return isinstance(value, _IMMUTABLE_DEFAULTS)
