"""Reading a CloudFormation/SAM template: YAML short tags, parameters, conditions, intrinsic functions.

The loader turns every short tag (``!Ref``, ``!Sub``, ``!GetAtt A.B`` ...) into its long form
(``{"Ref": ...}``, ``{"Fn::Sub": ...}``, ``{"Fn::GetAtt": ["A", "B"]}``), so the ``Resolver`` has one
shape to evaluate. The resolver knows parameters, pseudo parameters, conditions, mappings and the
attributes (``Ref``, ``Arn``, ``QueueUrl`` ...) of resources, which the caller fills in as it
creates them.
"""

from __future__ import annotations

import base64
import copy
import graphlib
import re
from collections.abc import Iterable, Mapping, MutableMapping
from pathlib import Path
from typing import Any

import yaml

DEFAULT_STACK_NAME = "correlator"
DEFAULT_ACCOUNT_ID = "123456789012"
PARAMETER_ENV_PREFIX = "CORRELATOR_PARAM_"
# Parameters the local runner may set (CORRELATOR_PARAM_<Name>) whether or not a template declares them.
RUNNER_PARAMETERS = frozenset({"RelayAllowedHosts"})

# SAM's Globals sections and the resource types they apply to.
GLOBALS_SECTIONS = {
    "AWS::Serverless::Function": "Function",
    "AWS::Serverless::Api": "Api",
    "AWS::Serverless::HttpApi": "HttpApi",
    "AWS::Serverless::SimpleTable": "SimpleTable",
    "AWS::Serverless::LayerVersion": "LayerVersion",
    "AWS::Serverless::StateMachine": "StateMachine",
}

_SHORT_TAGS = {
    "Ref": "Ref",
    "Condition": "Condition",
    **{
        name: f"Fn::{name}"
        for name in (
            "Sub",
            "GetAtt",
            "Join",
            "Select",
            "Split",
            "If",
            "Equals",
            "Not",
            "And",
            "Or",
            "FindInMap",
            "Base64",
            "ImportValue",
            "GetAZs",
            "Cidr",
            "Transform",
            "Length",
            "ToJsonString",
        )
    },
}
_SUB_VARIABLE = re.compile(r"\$\{([^}]*)\}")


class TemplateError(Exception):
    """The template cannot be read or an intrinsic function cannot be resolved locally."""


class _NoValue:
    """``AWS::NoValue``: the property or list item it stands for is removed."""

    def __repr__(self) -> str:
        return "AWS::NoValue"


NO_VALUE: Any = _NoValue()


class TemplateLoader(yaml.SafeLoader):
    """A SafeLoader that reads CloudFormation short tags into their long (JSON) form."""


def _tag_constructor(function: str) -> Any:
    def construct(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
        value: Any
        if isinstance(node, yaml.ScalarNode):
            value = loader.construct_scalar(node)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        elif isinstance(node, yaml.MappingNode):
            value = loader.construct_mapping(node, deep=True)
        else:  # pragma: no cover - yaml has no other node kinds
            raise TemplateError(f"unsupported node for !{function}")
        if function == "Fn::GetAtt" and isinstance(value, str):
            value = value.split(".", 1)
        return {function: value}

    return construct


for _tag, _function in _SHORT_TAGS.items():
    TemplateLoader.add_constructor(f"!{_tag}", _tag_constructor(_function))


def load_yaml(text: str) -> dict[str, Any]:
    """Parse template text (YAML or JSON) into a dict with long-form intrinsics."""
    body = yaml.load(text, Loader=TemplateLoader)  # noqa: S506 - a SafeLoader subclass
    if not isinstance(body, dict):
        raise TemplateError("the template is not a mapping")
    return body


def as_text(value: Any) -> str:
    """A resolved scalar as CloudFormation writes it into a string (``true``, ``3``, ``a``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return str(value)
    raise TemplateError(f"expected a string value, got {type(value).__name__}: {value!r}")


def _is_intrinsic(node: Any) -> bool:
    return isinstance(node, dict) and len(node) == 1 and next(iter(node)) in ("Ref", "Condition", *_functions())


def _functions() -> Iterable[str]:
    return (name for name in _SHORT_TAGS.values() if name.startswith("Fn::"))


def parameter_values(
    declared: Mapping[str, Any], environ: Mapping[str, str], tolerated: Iterable[str] = ()
) -> dict[str, Any]:
    """Each parameter's value: ``CORRELATOR_PARAM_<Name>`` if set, else its Default, typed and checked.

    A value is held to the parameter's constraints as CloudFormation holds it (``AllowedValues``,
    ``AllowedPattern``, ``MinValue``/``MaxValue``, ``MinLength``/``MaxLength``), and a
    ``CORRELATOR_PARAM_<Name>`` that names no parameter of the template is refused (a typo would
    otherwise be ignored silently); ``tolerated`` names may be set without being declared.
    """
    unknown = sorted(
        name[len(PARAMETER_ENV_PREFIX) :]
        for name in environ
        if name.startswith(PARAMETER_ENV_PREFIX) and name[len(PARAMETER_ENV_PREFIX) :] not in declared
    )
    unknown = [name for name in unknown if name not in set(tolerated)]
    if unknown:
        raise TemplateError(
            f"{', '.join(PARAMETER_ENV_PREFIX + name for name in unknown)}: the template has no such parameter "
            f"(it declares {', '.join(sorted(declared)) or 'none'})"
        )
    values: dict[str, Any] = {}
    for name, declaration in declared.items():
        spec = declaration if isinstance(declaration, dict) else {}
        raw = environ.get(PARAMETER_ENV_PREFIX + name, spec.get("Default"))
        if raw is None:
            raise TemplateError(f"parameter {name} has no Default: set {PARAMETER_ENV_PREFIX}{name}")
        value = _typed_parameter(name, str(spec.get("Type", "String")), raw)
        problem = _constraint_problem(spec, value)
        if problem:
            where = f" (from {PARAMETER_ENV_PREFIX}{name})" if PARAMETER_ENV_PREFIX + name in environ else ""
            hint = f": {spec['ConstraintDescription']}" if spec.get("ConstraintDescription") else ""
            raise TemplateError(f"parameter {name}={as_text(value)!r}{where} {problem}{hint}")
        values[name] = value
    return values


def _constraint_problem(spec: Mapping[str, Any], value: Any) -> str | None:
    """Why ``value`` breaks the parameter's constraints, or None."""
    allowed = spec.get("AllowedValues")
    items = value if isinstance(value, list) else [value]
    for item in items:
        if allowed and item not in allowed and as_text(item) not in [as_text(choice) for choice in allowed]:
            return f"is not one of {[as_text(choice) for choice in allowed]}"
        if isinstance(item, (int, float)):
            if "MinValue" in spec and item < float(spec["MinValue"]):
                return f"is less than its MinValue {spec['MinValue']}"
            if "MaxValue" in spec and item > float(spec["MaxValue"]):
                return f"is greater than its MaxValue {spec['MaxValue']}"
            continue
        text = as_text(item)
        if "AllowedPattern" in spec and not re.fullmatch(str(spec["AllowedPattern"]), text):
            return f"does not match its AllowedPattern {spec['AllowedPattern']}"
        if "MinLength" in spec and len(text) < int(spec["MinLength"]):
            return f"is shorter than its MinLength {spec['MinLength']}"
        if "MaxLength" in spec and len(text) > int(spec["MaxLength"]):
            return f"is longer than its MaxLength {spec['MaxLength']}"
    return None


def _typed_parameter(name: str, kind: str, raw: Any) -> Any:
    if kind == "Number":
        text = as_text(raw).strip()
        try:
            return int(text)
        except ValueError:
            try:
                return float(text)
            except ValueError:
                raise TemplateError(f"parameter {name} must be a number, got {raw!r}") from None
    if kind == "CommaDelimitedList" or kind.startswith("List<"):
        items = raw if isinstance(raw, list) else as_text(raw).split(",")
        return [as_text(item).strip() for item in items]
    return as_text(raw)


def pseudo_parameters(stack_name: str, region: str, account_id: str) -> dict[str, Any]:
    """The pseudo parameters (``AWS::Region`` ...) of the local stack."""
    return {
        "AWS::StackName": stack_name,
        "AWS::Region": region,
        "AWS::AccountId": account_id,
        "AWS::Partition": "aws",
        "AWS::URLSuffix": "amazonaws.com",
        "AWS::StackId": f"arn:aws:cloudformation:{region}:{account_id}:stack/{stack_name}/local",
        "AWS::NotificationARNs": [],
        "AWS::NoValue": NO_VALUE,
    }


class Resolver:
    """Evaluates intrinsic functions against parameters, conditions, mappings and resource attributes.

    ``attributes`` maps a logical id to its attributes; ``"Ref"`` is what ``!Ref`` returns. The
    mapping is read at every resolution, so resources can be added while the stack is created.
    """

    def __init__(
        self,
        *,
        parameters: Mapping[str, Any],
        pseudo: Mapping[str, Any],
        conditions: Mapping[str, Any] | None = None,
        mappings: Mapping[str, Any] | None = None,
        attributes: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        self.parameters = parameters
        self.pseudo = pseudo
        self.conditions = conditions or {}
        self.mappings = mappings or {}
        self.attributes: Mapping[str, Mapping[str, Any]] = attributes if attributes is not None else {}
        self._condition_values: dict[str, bool] = {}
        self._evaluating: set[str] = set()

    def resolve(self, node: Any) -> Any:
        """``node`` with every intrinsic function evaluated and ``AWS::NoValue`` removed."""
        if isinstance(node, dict):
            if len(node) == 1:
                key, argument = next(iter(node.items()))
                if key == "Ref":
                    return self.ref(as_text(self.resolve(argument)))
                if key.startswith("Fn::"):
                    return self._function(key, argument)
            resolved = {key: self.resolve(value) for key, value in node.items()}
            return {key: value for key, value in resolved.items() if value is not NO_VALUE}
        if isinstance(node, list):
            return [value for value in (self.resolve(item) for item in node) if value is not NO_VALUE]
        return node

    def ref(self, name: str) -> Any:
        if name in self.parameters:
            return self.parameters[name]
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.attributes:
            return self.attribute(name, "Ref")
        raise TemplateError(f"!Ref {name}: no such parameter, pseudo parameter or resource")

    def attribute(self, logical_id: str, name: str) -> Any:
        attributes = self.attributes.get(logical_id)
        if attributes is None:
            raise TemplateError(f"{logical_id} is not a resource of the local stack (or not created yet)")
        if name not in attributes:
            known = ", ".join(sorted(key for key in attributes if key != "Ref")) or "none"
            raise TemplateError(f"{logical_id} has no attribute {name} locally (known: {known})")
        return attributes[name]

    def condition(self, name: str) -> bool:
        """The value of the template condition ``name`` (evaluated once)."""
        if name not in self._condition_values:
            if name not in self.conditions:
                raise TemplateError(f"unknown condition {name}")
            if name in self._evaluating:
                raise TemplateError(f"condition {name} refers to itself")
            self._evaluating.add(name)
            try:
                self._condition_values[name] = self._truth(self.conditions[name])
            finally:
                self._evaluating.discard(name)
        return self._condition_values[name]

    def _truth(self, node: Any) -> bool:
        if isinstance(node, dict) and list(node) == ["Condition"]:
            return self.condition(as_text(node["Condition"]))
        value = self.resolve(node)
        if isinstance(value, bool):
            return value
        if value in ("true", "false"):
            return bool(value == "true")
        raise TemplateError(f"a condition must be boolean, got {value!r}")

    def _function(self, name: str, argument: Any) -> Any:
        handler = getattr(self, "_fn_" + name[4:].lower(), None)
        if handler is None:
            raise TemplateError(f"{name} is not supported by the local stack")
        return handler(argument)

    def _arguments(self, name: str, argument: Any, count: int) -> list[Any]:
        if not isinstance(argument, list) or len(argument) != count:
            raise TemplateError(f"Fn::{name} takes a list of {count} items, got {argument!r}")
        return argument

    def _fn_sub(self, argument: Any) -> str:
        variables: dict[str, Any] = {}
        if isinstance(argument, list):
            if len(argument) != 2 or not isinstance(argument[1], dict):
                raise TemplateError(f"Fn::Sub takes a string or [string, {{variables}}], got {argument!r}")
            argument, raw_variables = argument
            variables = {key: self.resolve(value) for key, value in raw_variables.items()}
        if not isinstance(argument, str):
            raise TemplateError(f"Fn::Sub takes a string, got {argument!r}")

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1).strip()
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return as_text(variables[name])
            if name in self.parameters or name in self.pseudo or "." not in name:
                return as_text(self.ref(name))
            logical_id, attribute = name.split(".", 1)
            return as_text(self.attribute(logical_id, attribute))

        return _SUB_VARIABLE.sub(substitute, argument)

    def _fn_getatt(self, argument: Any) -> Any:
        if isinstance(argument, str):
            argument = argument.split(".", 1)
        logical_id, attribute = self._arguments("GetAtt", argument, 2)
        return self.attribute(as_text(logical_id), as_text(self.resolve(attribute)))

    def _fn_join(self, argument: Any) -> str:
        delimiter, items = self._arguments("Join", argument, 2)
        values = self.resolve(items)
        if not isinstance(values, list):
            raise TemplateError(f"Fn::Join needs a list, got {values!r}")
        return as_text(delimiter).join(as_text(value) for value in values)

    def _fn_select(self, argument: Any) -> Any:
        index, items = (self.resolve(item) for item in self._arguments("Select", argument, 2))
        if not isinstance(items, list):
            raise TemplateError(f"Fn::Select needs a list, got {items!r}")
        try:
            return items[int(index)]
        except (ValueError, IndexError):
            raise TemplateError(f"Fn::Select index {index!r} out of range for {items!r}") from None

    def _fn_split(self, argument: Any) -> list[str]:
        delimiter, source = (self.resolve(item) for item in self._arguments("Split", argument, 2))
        return as_text(source).split(as_text(delimiter))

    def _fn_if(self, argument: Any) -> Any:
        condition, when_true, when_false = self._arguments("If", argument, 3)
        return self.resolve(when_true if self.condition(as_text(condition)) else when_false)

    def _fn_equals(self, argument: Any) -> bool:
        left, right = (self.resolve(item) for item in self._arguments("Equals", argument, 2))
        return bool(left == right or as_text(left) == as_text(right))

    def _fn_not(self, argument: Any) -> bool:
        (operand,) = self._arguments("Not", argument, 1)
        return not self._truth(operand)

    def _fn_and(self, argument: Any) -> bool:
        if not isinstance(argument, list) or not argument:
            raise TemplateError(f"Fn::And takes a list of conditions, got {argument!r}")
        return all(self._truth(operand) for operand in argument)

    def _fn_or(self, argument: Any) -> bool:
        if not isinstance(argument, list) or not argument:
            raise TemplateError(f"Fn::Or takes a list of conditions, got {argument!r}")
        return any(self._truth(operand) for operand in argument)

    def _fn_findinmap(self, argument: Any) -> Any:
        if not isinstance(argument, list) or len(argument) not in (3, 4):
            raise TemplateError(f"Fn::FindInMap takes [map, key, key], got {argument!r}")
        name, top, second = (as_text(self.resolve(item)) for item in argument[:3])
        try:
            return self.resolve(self.mappings[name][top][second])
        except (KeyError, TypeError):
            if len(argument) == 4 and isinstance(argument[3], dict) and "DefaultValue" in argument[3]:
                return self.resolve(argument[3]["DefaultValue"])
            raise TemplateError(f"Fn::FindInMap: no {name}.{top}.{second} in Mappings") from None

    def _fn_base64(self, argument: Any) -> str:
        return base64.b64encode(as_text(self.resolve(argument)).encode("utf-8")).decode("ascii")

    def _fn_getazs(self, argument: Any) -> list[str]:
        region = as_text(self.resolve(argument)) or as_text(self.pseudo["AWS::Region"])
        return [f"{region}{zone}" for zone in "abc"]

    def _fn_importvalue(self, argument: Any) -> Any:
        raise TemplateError(
            f"Fn::ImportValue {self.resolve(argument)!r} cannot be resolved locally: the local stack has no other"
            " stacks to import from (pass the value as a parameter instead)"
        )


def merge_globals(global_properties: Mapping[str, Any], properties: Mapping[str, Any]) -> dict[str, Any]:
    """SAM's Globals merge: maps merge recursively, lists add (globals first), anything else is overridden."""
    merged = copy.deepcopy(dict(global_properties))
    for key, value in properties.items():
        current = merged.get(key)
        if isinstance(current, dict) and isinstance(value, dict) and not _is_intrinsic(current):
            merged[key] = value if _is_intrinsic(value) else merge_globals(current, value)
        elif isinstance(current, list) and isinstance(value, list):
            merged[key] = current + copy.deepcopy(value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def references(node: Any) -> set[str]:
    """Names that ``node`` refers to through Ref, Fn::GetAtt and Fn::Sub (parameters included)."""
    found: set[str] = set()
    if isinstance(node, dict):
        if len(node) == 1:
            key, argument = next(iter(node.items()))
            if key == "Ref" and isinstance(argument, str):
                return {argument}
            if key == "Fn::GetAtt":
                target = argument.split(".", 1)[0] if isinstance(argument, str) else argument[0]
                return {target} | references(argument[1:] if isinstance(argument, list) else [])
            if key == "Fn::Sub":
                text, variables = (argument[0], argument[1]) if isinstance(argument, list) else (argument, {})
                names = {match.split(".", 1)[0].strip() for match in _SUB_VARIABLE.findall(str(text))}
                return {name for name in names if not name.startswith("!")} - set(variables) | references(variables)
        for value in node.values():
            found |= references(value)
    elif isinstance(node, list):
        for item in node:
            found |= references(item)
    return found


def creation_order(resources: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Logical ids of ``resources`` so that each comes after the resources of this set it refers to."""
    sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
    for logical_id, resource in resources.items():
        depends_on = resource.get("DependsOn", [])
        depends = {depends_on} if isinstance(depends_on, str) else set(depends_on)
        depends |= references(resource.get("Properties", {}))
        sorter.add(logical_id, *sorted(name for name in depends if name in resources and name != logical_id))
    try:
        return list(sorter.static_order())
    except graphlib.CycleError as error:
        raise TemplateError(f"circular dependency between resources: {error.args[1]}") from None


class Template:
    """A loaded template: its parameters, resources (conditions applied) and a resolver.

    ``attributes`` is the live table of resource attributes that ``resolve`` reads; whoever
    creates a resource records its ``Ref`` and attributes there.
    """

    def __init__(
        self,
        body: Mapping[str, Any],
        *,
        root: Path,
        environ: Mapping[str, str],
        stack_name: str = DEFAULT_STACK_NAME,
        region: str = "us-east-1",
        account_id: str = DEFAULT_ACCOUNT_ID,
    ) -> None:
        self.body = body
        self.root = root
        self.stack_name = stack_name
        self.region = region
        self.account_id = account_id
        self.parameters = parameter_values(body.get("Parameters") or {}, environ, tolerated=RUNNER_PARAMETERS)
        self.attributes: MutableMapping[str, dict[str, Any]] = {}
        self.resolver = Resolver(
            parameters=self.parameters,
            pseudo=pseudo_parameters(stack_name, region, account_id),
            conditions=body.get("Conditions") or {},
            mappings=body.get("Mappings") or {},
            attributes=self.attributes,
        )
        self.resources: dict[str, dict[str, Any]] = {}
        for logical_id, resource in (body.get("Resources") or {}).items():
            if not isinstance(resource, dict) or "Type" not in resource:
                raise TemplateError(f"resource {logical_id} has no Type")
            condition = resource.get("Condition")
            if condition is None or self.resolver.condition(str(condition)):
                self.resources[logical_id] = resource

    @classmethod
    def load(cls, path: Path, environ: Mapping[str, str], **kwargs: Any) -> Template:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as error:
            raise TemplateError(f"cannot read {path}: {error}") from error
        return cls(load_yaml(text), root=path.parent, environ=environ, **kwargs)

    def resolve(self, node: Any) -> Any:
        return self.resolver.resolve(node)

    def type_of(self, logical_id: str) -> str:
        return str(self.resources[logical_id]["Type"])

    def of_type(self, *types: str) -> list[str]:
        """Logical ids of the resources of these types, in template order."""
        return [logical_id for logical_id, resource in self.resources.items() if resource["Type"] in types]

    def properties(self, logical_id: str) -> dict[str, Any]:
        """The unresolved Properties of a resource, with its Globals section merged in."""
        resource = self.resources[logical_id]
        properties = resource.get("Properties") or {}
        section = GLOBALS_SECTIONS.get(str(resource["Type"]))
        global_properties = ((self.body.get("Globals") or {}).get(section) or {}) if section else {}
        return merge_globals(global_properties, properties)

    def resolved_property(self, logical_id: str, name: str, default: Any = None) -> Any:
        """One resolved property (Globals included), or ``default`` when absent."""
        raw = self.properties(logical_id).get(name)
        if raw is None:
            return default
        value = self.resolve(raw)
        return default if value is NO_VALUE else value
