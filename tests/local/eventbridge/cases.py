"""EventBridge pattern conformance cases: pattern, event, expected outcome, and where the expectation comes from.

Each case cites its source:

* ``DOC:<page>#<section>`` — the Amazon EventBridge User Guide,
  https://docs.aws.amazon.com/eventbridge/latest/userguide/<page>.html
* ``RULER:README#<section>`` — aws/event-ruler's README (the matching library behind EventBridge),
  https://github.com/aws/event-ruler
* ``RULER:<file>`` — a source or test file of aws/event-ruler (``JsonRuleCompiler.java`` for what is
  valid, ``ByteMachine.java`` for what a value matches, ``CIDR.java``, ``WildcardParser.java``,
  ``GenericMachineTest.java#nestedArraysTest`` with its data files, copied next to this module).

``expected`` is True (matches), False (does not match) or INVALID (PutRule and TestEventPattern
refuse the pattern with InvalidEventPatternException).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

INVALID: Final = "invalid"
HERE = Path(__file__).resolve().parent

CONTENT = "DOC:eb-event-patterns-content-based-filtering"
OPERATORS = "DOC:eb-create-pattern-operators"
ARRAYS = "DOC:eb-event-patterns-arrays"
NULLS = "DOC:eb-event-patterns-null-values"
PATTERNS = "DOC:eb-event-patterns"
README = "RULER:README"
COMPILER = "RULER:JsonRuleCompiler.java"
BYTE_MACHINE = "RULER:ByteMachine.java"
NESTED_ARRAYS = "RULER:GenericMachineTest.java#nestedArraysTest"
# Wildcard complexity: how MachineComplexityEvaluator counts ("<input> is matched by N wildcard prefixes"),
# the README's validate() example ("Rule is too complex" when over the limit) and EventBridge's wording
# (DOC:eb-create-pattern-operators#eb-filtering-wildcard-matching-complexity: "If a rule is too complex,
# EventBridge returns an InvalidEventPatternException"). The limit itself (10) is local.event_pattern's.
COMPLEXITY = "RULER:MachineComplexityEvaluatorTest.java"
TOO_COMPLEX = "RULER:README#matching-with-a-machine (Rule is too complex)"
QUAMINA_EXPLODER = [
    "aahed*",
    "aal*ii",
    "aargh*",
    "aarti*",
    "a*baca",
    "*abaci",
    "a*back",
    "ab*acs",
    "abaf*t",
    "*abaka",
    "ab*amp",
    "a*band",
    "*abase",
    "abash*",
    "abas*k",
    "ab*ate",
    "aba*ya",
    "abbas*",
    "abbed*",
    "ab*bes",
    "abbey*",
    "*abbot",
    "ab*cee",
    "abea*m",
    "abe*ar",
    "a*bele",
    "a*bers",
    "abet*s",
    "*abhor",
    "abi*de",
    "a*bies",
    "*abled",
]


@dataclass(frozen=True)
class Case:
    source: str
    pattern: dict[str, Any] | str  # a str is sent as it is (for malformed JSON and duplicate keys)
    event: dict[str, Any]
    expected: bool | str

    @property
    def pattern_text(self) -> str:
        return self.pattern if isinstance(self.pattern, str) else json.dumps(self.pattern)


# The sample event of event-ruler's README ("Ruler by Example") and of the EventBridge docs.
EC2: Final[dict[str, Any]] = {
    "version": "0",
    "id": "ddddd4-aaaa-7777-4444-345dd43cc333",
    "detail-type": "EC2 Instance State-change Notification",
    "source": "aws.ec2",
    "account": "012345679012",
    "time": "2017-10-02T16:24:49Z",
    "region": "us-east-1",
    "resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-000000aaaaaa00000"],
    "detail": {
        "c-count": 5,
        "d-count": 3,
        "x-limit": 301.8,
        "source-ip": "10.0.0.33",
        "instance-id": "i-000000aaaaaa00000",
        "state": "running",
    },
}
ARN = EC2["resources"][0]


def detail(**fields: Any) -> dict[str, Any]:
    """A pattern on ``detail``."""
    return {"detail": fields}


def ec2_with(**fields: Any) -> dict[str, Any]:
    """The sample event with more (or other) detail fields."""
    return {**EC2, "detail": {**EC2["detail"], **fields}}


def data(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((HERE / f"{name}.json").read_text())
    return loaded


EMPLOYEES = {
    "employees": [
        {"firstName": "John", "lastName": "Doe"},
        {"firstName": "Anna", "lastName": "Smith"},
        {"firstName": "Peter", "lastName": "Jones"},
    ]
}
EMPLOYEES_NESTED = {
    "employees": [
        [{"firstName": "John", "lastName": "Doe"}, {"firstName": "Anna", "lastName": "Smith"}],
        [{"firstName": "Peter", "lastName": "Jones"}],
    ]
}
NORMAL_OR = {
    "source": ["aws.cloudwatch"],
    "$or": [{"metricName": ["CPUUtilization", "ReadLatency"]}, {"namespace": ["AWS/EC2", "AWS/ES"]}],
}
PARALLEL_OR = {
    "$or": [{"metricName": ["CPUUtilization", "ReadLatency"]}, {"namespace": ["AWS/EC2", "AWS/ES"]}],
    "detail": {"$or": [{"source": ["aws.cloudwatch"]}, {"detail-type": ["CloudWatch Alarm State Change"]}]},
}
NESTED_OR = {
    "source": ["aws.cloudwatch"],
    "$or": [
        {"metricName": ["CPUUtilization", "ReadLatency"]},
        {
            "metricType": ["MetricType"],
            "namespace": ["AWS/EC2", "AWS/ES"],
            "$or": [{"metricId": [1234]}, {"spaceId": [1000]}],
        },
        {"scope": ["Service"]},
    ],
}
CW = {"source": "aws.cloudwatch"}

CASES: Final[list[Case]] = [
    # ---- exact values, AND across fields, OR within a field ----
    Case(
        f"{README}#simple-matching",
        {
            "detail-type": ["EC2 Instance State-change Notification"],
            "resources": [ARN],
            "detail": {"state": ["initializing", "running"]},
        },
        EC2,
        True,
    ),
    Case(f"{README}#simple-matching", detail(state=["initializing"]), EC2, False),
    Case(f"{PATTERNS}#eb-create-pattern (values are case sensitive)", {"source": ["aws.EC2"]}, EC2, False),
    Case(
        f"{PATTERNS}#eb-create-pattern (every field must match)",
        {"source": ["aws.ec2"], **detail(gone=["x"])},
        EC2,
        False,
    ),
    Case(f"{PATTERNS}#eb-create-pattern (other fields are ignored)", {"source": ["aws.ec2"]}, EC2, True),
    Case(f"{README}#json-text-matching (a string is not a number)", detail(**{"c-count": ["5"]}), EC2, False),
    Case(f"{COMPILER}#writeRules (numbers match as numbers)", detail(**{"c-count": [5]}), EC2, True),
    Case(f"{COMPILER}#writeRules (numbers match as numbers)", detail(**{"c-count": [5.0]}), EC2, True),
    Case(f"{COMPILER}#writeRules (numbers match as numbers)", '{"detail": {"x-limit": [3.018e2]}}', EC2, True),
    Case(f"{COMPILER}#writeRules (numbers match as numbers)", detail(**{"c-count": [6]}), EC2, False),
    Case(f"{README}#json-text-matching (true is not 1)", {"flag": [1]}, {"flag": True}, False),
    Case(f"{README}#json-text-matching (true is not 1)", {"flag": [True]}, {"flag": 1}, False),
    Case(f"{README}#json-text-matching (false is not 0)", {"flag": [False]}, {"flag": 0}, False),
    Case(f"{README}#json-text-matching", {"flag": [True]}, {"flag": True}, True),
    Case(
        f"{README}#json-text-matching (the literal true is not the string)", {"flag": ["true"]}, {"flag": True}, False
    ),
    Case(f"{README}#json-text-matching", {"flag": [False]}, {"flag": True}, False),
    # ---- null and empty strings ----
    Case(NULLS, detail(eventVersion=[""]), {"detail": {"eventVersion": "", "responseElements": None}}, True),
    Case(NULLS, detail(responseElements=[None]), {"detail": {"eventVersion": "", "responseElements": None}}, True),
    Case(
        f"{NULLS} (null and empty string are not interchangeable)",
        detail(eventVersion=[None]),
        {"detail": {"eventVersion": "", "responseElements": None}},
        False,
    ),
    Case(
        f"{NULLS} (null and empty string are not interchangeable)",
        detail(responseElements=[""]),
        {"detail": {"eventVersion": "", "responseElements": None}},
        False,
    ),
    Case(f"{NULLS} (null matches a null value, not a missing field)", detail(missing=[None]), EC2, False),
    # ---- prefix ----
    Case(f"{CONTENT}#eb-filtering-prefix-matching", {"time": [{"prefix": "2017-10-02"}]}, EC2, True),
    Case(f"{CONTENT}#eb-filtering-prefix-matching", {"time": [{"prefix": "2017-10-03"}]}, EC2, False),
    Case(f"{README}#prefix-matching (strings only)", detail(**{"c-count": [{"prefix": "5"}]}), EC2, False),
    Case(f"{COMPILER}#processMatchExpression (an empty prefix is allowed)", detail(state=[{"prefix": ""}]), EC2, True),
    Case(
        f"{CONTENT}#eb-filtering-prefix-matching-ignore-case",
        {"source": [{"prefix": {"equals-ignore-case": "AWS.EC"}}]},
        EC2,
        True,
    ),
    Case(
        f"{CONTENT}#eb-filtering-prefix-matching-ignore-case",
        {"source": [{"prefix": {"equals-ignore-case": "EC2"}}]},
        EC2,
        False,
    ),
    Case(f"{COMPILER}#processMatchExpression", {"source": [{"prefix": 5}]}, EC2, INVALID),
    Case(f"{COMPILER}#processMatchExpression", {"source": [{"prefix": ["aws."]}]}, EC2, INVALID),
    Case(f"{COMPILER}#processPrefixEqualsIgnoreCaseExpression", {"source": [{"prefix": {"bogus": "a"}}]}, EC2, INVALID),
    Case(
        f"{COMPILER}#processPrefixEqualsIgnoreCaseExpression",
        {"source": [{"prefix": {"equals-ignore-case": 5}}]},
        EC2,
        INVALID,
    ),
    # ---- suffix ----
    Case(f"{CONTENT}#eb-filtering-suffix-matching", {"FileName": [{"suffix": ".png"}]}, {"FileName": "a/b.png"}, True),
    Case(f"{CONTENT}#eb-filtering-suffix-matching", {"FileName": [{"suffix": ".png"}]}, {"FileName": "a/b.PNG"}, False),
    Case(
        f"{CONTENT}#eb-filtering-suffix-matching-ignore-case",
        detail(FileName=[{"suffix": {"equals-ignore-case": ".png"}}]),
        {"detail": {"FileName": "IMAGE.PNG"}},
        True,
    ),
    Case(f"{README}#suffix-matching", {"source": [{"suffix": "ec2"}]}, EC2, True),
    Case(f"{COMPILER}#processMatchExpression", {"source": [{"suffix": ["ec2"]}]}, EC2, INVALID),
    # ---- equals-ignore-case ----
    Case(
        f"{CONTENT}#eb-filtering-equals-ignore-case-matching",
        {"source": [{"equals-ignore-case": "AWS.EC2"}]},
        EC2,
        True,
    ),
    Case(
        f"{README}#equals-ignore-case-matching (strings only)",
        detail(**{"c-count": [{"equals-ignore-case": "5"}]}),
        EC2,
        False,
    ),
    Case(f"{COMPILER}#processMatchExpression", {"source": [{"equals-ignore-case": 5}]}, EC2, INVALID),
    # ---- wildcard ----
    Case(
        f"{README}#wildcard-matching",
        {"source": [{"wildcard": "Simple*Service"}]},
        {"source": "SimpleQueueService"},
        True,
    ),
    Case(
        f"{README}#wildcard-matching (zero characters)",
        {"source": [{"wildcard": "Simple*Service"}]},
        {"source": "SimpleService"},
        True,
    ),
    Case(f"{README}#wildcard-matching", {"source": [{"wildcard": "Simple*Service"}]}, {"source": "SimpleQueue"}, False),
    Case(f"{CONTENT}#eb-filtering-wildcard-matching", {"f": [{"wildcard": "dir/*.png"}]}, {"f": "dir/sub/a.png"}, True),
    Case(f"{CONTENT}#eb-filtering-wildcard-matching", {"f": [{"wildcard": "dir/*.png"}]}, {"f": "dir/a.jpg"}, False),
    Case(f"{README}#wildcard-matching (an escaped asterisk)", {"f": [{"wildcard": "a\\*b"}]}, {"f": "a*b"}, True),
    Case(f"{README}#wildcard-matching (an escaped asterisk)", {"f": [{"wildcard": "a\\*b"}]}, {"f": "axb"}, False),
    Case(f"{README}#wildcard-matching (strings only)", {"n": [{"wildcard": "*"}]}, {"n": 5}, False),
    Case(f"{README}#wildcard-matching (no consecutive wildcards)", {"f": [{"wildcard": "a**b"}]}, {"f": "ab"}, INVALID),
    Case(f"{README}#wildcard-matching (bad escape)", {"f": [{"wildcard": "a\\b"}]}, {"f": "ab"}, INVALID),
    Case(f"{COMPILER}#processMatchExpression", {"f": [{"wildcard": 5}]}, {"f": "5"}, INVALID),
    # ---- anything-but ----
    Case(f"{README}#anything-but-matching", detail(state=[{"anything-but": "initializing"}]), EC2, True),
    Case(f"{README}#anything-but-matching", detail(state=[{"anything-but": "running"}]), EC2, False),
    Case(f"{README}#anything-but-matching", detail(**{"x-limit": [{"anything-but": 123}]}), EC2, True),
    Case(f"{README}#anything-but-matching", detail(**{"x-limit": [{"anything-but": [100, 200, 301.8]}]}), EC2, False),
    Case(f"{README}#anything-but-matching", detail(state=[{"anything-but": ["stopped", "overloaded"]}]), EC2, True),
    Case(f"{README}#anything-but-matching", detail(state=[{"anything-but": ["running", "stopped"]}]), EC2, False),
    Case(f"{README}#anything-but-matching", detail(state=[{"anything-but": {"prefix": "init"}}]), EC2, True),
    Case(f"{README}#anything-but-matching", detail(state=[{"anything-but": {"prefix": "run"}}]), EC2, False),
    Case(f"{README}#anything-but-matching", detail(state=[{"anything-but": {"prefix": ["init", "error"]}}]), EC2, True),
    Case(
        f"{README}#anything-but-matching", detail(**{"instance-id": [{"anything-but": {"suffix": "1234"}}]}), EC2, True
    ),
    Case(
        f"{README}#anything-but-matching", detail(**{"instance-id": [{"anything-but": {"suffix": "0000"}}]}), EC2, False
    ),
    Case(
        f"{README}#anything-but-matching",
        detail(state=[{"anything-but": {"equals-ignore-case": "RUNNING"}}]),
        EC2,
        False,
    ),
    Case(
        f"{README}#anything-but-matching",
        detail(state=[{"anything-but": {"equals-ignore-case": ["Stopped", "OverLoaded"]}}]),
        EC2,
        True,
    ),
    Case(
        f"{CONTENT}#eb-filtering-anything-but-wildcard",
        detail(state=[{"anything-but": {"wildcard": "run*"}}]),
        EC2,
        False,
    ),
    Case(
        f"{CONTENT}#eb-filtering-anything-but-wildcard",
        {"FilePath": [{"anything-but": {"wildcard": "*/lib/*"}}]},
        {"FilePath": "/usr/bin/tool"},
        True,
    ),
    Case(
        f"{CONTENT}#eb-filtering-anything-but-wildcard",
        {"FilePath": [{"anything-but": {"wildcard": ["*/lib/*", "*/bin/*"]}}]},
        {"FilePath": "/usr/bin/tool"},
        False,
    ),
    Case(
        f"{BYTE_MACHINE}#doTransitionOn (a missing field has no value to differ)",
        detail(gone=[{"anything-but": "x"}]),
        EC2,
        False,
    ),
    Case(
        f"{BYTE_MACHINE}#doTransitionOn (a string is not the number 5)",
        detail(**{"c-count": [{"anything-but": "5"}]}),
        EC2,
        True,
    ),
    Case(
        f"{BYTE_MACHINE}#doTransitionOn (numbers exclude numbers only)",
        detail(state=[{"anything-but": [100]}]),
        EC2,
        True,
    ),
    Case(
        f"{BYTE_MACHINE}#doTransitionOn (numbers compare as numbers)",
        detail(**{"c-count": [{"anything-but": 5.0}]}),
        EC2,
        False,
    ),
    Case(f"{ARRAYS} (any element may match)", {"resources": [{"anything-but": "a"}]}, {"resources": ["a", "b"]}, True),
    Case(
        f"{ARRAYS} (any element may match)",
        {"resources": [{"anything-but": ["a", "b"]}]},
        {"resources": ["a", "b"]},
        False,
    ),
    Case(f"{README}#anything-but-matching (no mixed lists)", detail(state=[{"anything-but": ["a", 1]}]), EC2, INVALID),
    Case(f"{COMPILER}#processAnythingButListMatchExpression", detail(state=[{"anything-but": []}]), EC2, INVALID),
    Case(f"{COMPILER}#processAnythingButListMatchExpression", detail(state=[{"anything-but": [True]}]), EC2, INVALID),
    Case(f"{COMPILER}#processMatchExpression", detail(state=[{"anything-but": None}]), EC2, INVALID),
    Case(f"{COMPILER}#processMatchExpression", detail(state=[{"anything-but": {"numeric": [">", 1]}}]), EC2, INVALID),
    Case(
        f"{COMPILER}#processAnythingButValuesSetSingleValueMatchExpression",
        detail(state=[{"anything-but": {"prefix": ""}}]),
        EC2,
        INVALID,
    ),
    Case(
        f"{COMPILER}#processAnythingButValuesSetSingleValueMatchExpression",
        detail(state=[{"anything-but": {"suffix": ""}}]),
        EC2,
        INVALID,
    ),
    Case(
        f"{COMPILER}#processAnythingButValuesSetSingleValueMatchExpression",
        detail(state=[{"anything-but": {"prefix": 5}}]),
        EC2,
        INVALID,
    ),
    Case(
        f"{COMPILER}#processAnythingButValuesSetMatchExpression",
        detail(state=[{"anything-but": {"equals-ignore-case": [1]}}]),
        EC2,
        INVALID,
    ),
    Case(
        f"{COMPILER}#processAnythingButValuesSetMatchExpression",
        detail(state=[{"anything-but": {"wildcard": "a**"}}]),
        EC2,
        INVALID,
    ),
    Case(
        f"{COMPILER}#processMatchExpression",
        detail(state=[{"anything-but": {"prefix": "a", "suffix": "b"}}]),
        EC2,
        INVALID,
    ),
    # ---- numeric ----
    Case(
        f"{README}#numeric-matching",
        detail(
            **{
                "c-count": [{"numeric": [">", 0, "<=", 5]}],
                "d-count": [{"numeric": ["<", 10]}],
                "x-limit": [{"numeric": ["=", 3.018e2]}],
            }
        ),
        EC2,
        True,
    ),
    Case(f"{CONTENT}#filtering-numeric-matching", detail(**{"c-count": [{"numeric": [">", 5]}]}), EC2, False),
    Case(f"{CONTENT}#filtering-numeric-matching", detail(**{"c-count": [{"numeric": [">=", 5]}]}), EC2, True),
    Case(f"{CONTENT}#filtering-numeric-matching", detail(**{"c-count": [{"numeric": ["<", 5]}]}), EC2, False),
    Case(f"{CONTENT}#filtering-numeric-matching", detail(**{"c-count": [{"numeric": ["<=", 5]}]}), EC2, True),
    Case(f"{CONTENT}#filtering-numeric-matching", detail(**{"c-count": [{"numeric": [">", 0, "<", 5]}]}), EC2, False),
    Case(f"{CONTENT}#filtering-numeric-matching", detail(**{"c-count": [{"numeric": [">=", 5, "<", 6]}]}), EC2, True),
    Case(f"{README}#numeric-matching (JSON numbers only)", {"n": [{"numeric": ["=", 5]}]}, {"n": "5"}, False),
    Case(f"{README}#numeric-matching (JSON numbers only)", {"n": [{"numeric": [">", 0]}]}, {"n": True}, False),
    Case(f"{ARRAYS} (any element may match)", {"n": [{"numeric": [">", 10]}]}, {"n": [1, 2, 30]}, True),
    Case(f"{COMPILER}#processNumericMatchExpression", detail(**{"c-count": [{"numeric": [">"]}]}), EC2, INVALID),
    Case(f"{COMPILER}#processNumericMatchExpression", detail(**{"c-count": [{"numeric": [">", "a"]}]}), EC2, INVALID),
    Case(f"{COMPILER}#processNumericMatchExpression", detail(**{"c-count": [{"numeric": [">", True]}]}), EC2, INVALID),
    Case(
        f"{COMPILER}#processNumericMatchExpression",
        detail(**{"c-count": [{"numeric": ["<", 5, ">", 1]}]}),
        EC2,
        INVALID,
    ),
    Case(f"{COMPILER}#completeNumericRange", detail(**{"c-count": [{"numeric": [">", 1, ">", 5]}]}), EC2, INVALID),
    Case(
        f"{COMPILER}#completeNumericRange (Range: bottom below top)",
        detail(**{"c-count": [{"numeric": [">", 5, "<", 1]}]}),
        EC2,
        INVALID,
    ),
    Case(
        f"{COMPILER}#completeNumericRange", detail(**{"c-count": [{"numeric": [">", 0, "<", 5, "<", 9]}]}), EC2, INVALID
    ),
    Case(
        f"{COMPILER}#processNumericMatchExpression",
        detail(**{"c-count": [{"numeric": ["=", 1, "<", 5]}]}),
        EC2,
        INVALID,
    ),
    Case(f"{COMPILER}#processNumericMatchExpression", detail(**{"c-count": [{"numeric": ["!=", 1]}]}), EC2, INVALID),
    Case(f"{COMPILER}#processNumericMatchExpression", detail(**{"c-count": [{"numeric": []}]}), EC2, INVALID),
    Case(f"{COMPILER}#processMatchExpression", detail(**{"c-count": [{"numeric": ">"}]}), EC2, INVALID),
    Case(
        f"{COMPILER}#processNumericMatchExpression (ComparableNumber)",
        '{"n": [{"numeric": [">", 1e400]}]}',
        {"n": 1},
        INVALID,
    ),
    # ---- exists ----
    Case(f"{README}#exists-matching", detail(**{"c-count": [{"exists": True}]}), EC2, True),
    Case(f"{README}#exists-matching", detail(**{"c-count": [{"exists": False}]}), EC2, False),
    Case(f"{CONTENT}#eb-filtering-exists-matching", detail(gone=[{"exists": False}]), EC2, True),
    Case(f"{CONTENT}#eb-filtering-exists-matching", detail(gone=[{"exists": True}]), EC2, False),
    Case(
        f"{README}#exists-matching (leaf nodes only)",
        detail(**{"c-count": [{"exists": False}]}),
        ec2_with(**{"c-count": {"c1": 100}}),
        True,
    ),
    Case(
        f"{README}#exists-matching (leaf nodes only)",
        detail(**{"c-count": [{"exists": True}]}),
        ec2_with(**{"c-count": {"c1": 100}}),
        False,
    ),
    Case(
        f"{README}#exists-matching (an empty array has no leaf)",
        detail(tags=[{"exists": True}]),
        ec2_with(tags=[]),
        False,
    ),
    Case(
        f"{README}#exists-matching (an empty array has no leaf)",
        detail(tags=[{"exists": False}]),
        ec2_with(tags=[]),
        True,
    ),
    Case(
        f"{README}#exists-matching (an empty object has no leaf)",
        detail(meta=[{"exists": True}]),
        ec2_with(meta={}),
        False,
    ),
    Case(
        f"{README}#exists-matching (an empty object has no leaf)",
        detail(meta=[{"exists": False}]),
        ec2_with(meta={}),
        True,
    ),
    Case(
        f"{BYTE_MACHINE}#addExistenceMatch (null is a value)",
        detail(note=[{"exists": True}]),
        ec2_with(note=None),
        True,
    ),
    Case(f"{ARRAYS} (a value in an array exists)", detail(tags=[{"exists": True}]), ec2_with(tags=["a"]), True),
    Case(f"{CONTENT}#eb-filtering-exists-matching (or a value)", detail(gone=["x", {"exists": False}]), EC2, True),
    Case(f"{COMPILER}#processExistsExpression", detail(state=[{"exists": "true"}]), EC2, INVALID),
    Case(f"{COMPILER}#processExistsExpression", detail(state=[{"exists": 1}]), EC2, INVALID),
    # ---- cidr ----
    Case(f"{CONTENT}#eb-filtering-ip-matching", detail(**{"source-ip": [{"cidr": "10.0.0.0/24"}]}), EC2, True),
    Case(f"{CONTENT}#eb-filtering-ip-matching", detail(**{"source-ip": [{"cidr": "10.0.1.0/24"}]}), EC2, False),
    Case(f"{README}#ip-address-matching", detail(**{"source-ip": [{"cidr": "10.0.0.0/8"}]}), EC2, True),
    Case(f"{README}#ip-address-matching (IPv6)", {"ip": [{"cidr": "2001:db8::/32"}]}, {"ip": "2001:db8::1"}, True),
    Case(f"{README}#ip-address-matching (IPv6)", {"ip": [{"cidr": "2001:db8::/32"}]}, {"ip": "2001:db9::1"}, False),
    Case(f"{README}#ip-address-matching", {"ip": [{"cidr": "10.0.0.0/24"}]}, {"ip": "not an address"}, False),
    Case(
        f"{COMPILER}#writeRules (an address string matches that address)",
        detail(**{"source-ip": ["10.0.0.33"]}),
        EC2,
        True,
    ),
    Case("RULER:CIDR.java#cidr (mask bits below 32)", {"ip": [{"cidr": "10.0.0.0/33"}]}, {"ip": "10.0.0.1"}, INVALID),
    Case("RULER:CIDR.java#cidr (mask bits below 32)", {"ip": [{"cidr": "10.0.0.1/32"}]}, {"ip": "10.0.0.1"}, INVALID),
    Case("RULER:CIDR.java#cidr (one '/' required)", {"ip": [{"cidr": "10.0.0.0"}]}, {"ip": "10.0.0.0"}, INVALID),
    Case("RULER:CIDR.java#cidr (mask bits an integer)", {"ip": [{"cidr": "10.0.0.0/x"}]}, {"ip": "10.0.0.0"}, INVALID),
    Case(f"{COMPILER}#processMatchExpression", {"ip": [{"cidr": 10}]}, {"ip": "10.0.0.0"}, INVALID),
    # ---- arrays ----
    Case(
        f"{ARRAYS} (non-empty intersection)",
        {"resources": [ARN, "arn:aws:ec2:us-east-1:123456789012:instance/other"]},
        EC2,
        True,
    ),
    Case(
        f"{ARRAYS} (empty intersection)",
        {"resources": ["arn:aws:ec2:us-east-1:123456789012:instance/other"]},
        EC2,
        False,
    ),
    Case(f"{ARRAYS} (an array of numbers)", {"n": [2]}, {"n": [1, 2, 3]}, True),
    Case(f"{README}#json-array-matching (arrays of objects)", {"employees": {"firstName": ["Anna"]}}, EMPLOYEES, True),
    Case(f"{README}#json-array-matching (arrays of objects)", {"employees": {"firstName": ["Zoe"]}}, EMPLOYEES, False),
    Case(
        f"{README}#json-array-matching (nested arrays)", {"employees": {"firstName": ["Anna"]}}, EMPLOYEES_NESTED, True
    ),
    Case(
        f"{README}#json-array-matching (same element)",
        {"employees": {"firstName": ["Anna"], "lastName": ["Smith"]}},
        EMPLOYEES,
        True,
    ),
    Case(
        f"{README}#json-array-matching (array consistency)",
        {"employees": {"firstName": ["Anna"], "lastName": ["Jones"]}},
        EMPLOYEES,
        False,
    ),
    Case(
        f"{README}#json-array-matching (array consistency, nested)",
        {"employees": {"firstName": ["Anna"], "lastName": ["Jones"]}},
        EMPLOYEES_NESTED,
        False,
    ),
    Case(
        f"{README}#json-array-matching (array consistency, nested)",
        {"employees": {"firstName": ["Peter"], "lastName": ["Jones"]}},
        EMPLOYEES_NESTED,
        True,
    ),
    Case(f"{README}#json-array-matching (nested arrays of values)", {"x": [3]}, {"x": [[1, 2], [3]]}, True),
    Case(
        f"{README}#json-array-matching (arrays of objects)",
        {"items": {"price": [{"numeric": [">", 10]}]}},
        {"items": [{"price": 5}, {"price": 50}]},
        True,
    ),
    Case(
        f"{README}#json-array-matching (array consistency)",
        {"d": {"a": [{"exists": True}], "b": [{"exists": True}]}},
        {"d": [{"a": 1}, {"b": 2}]},
        False,
    ),
    Case(
        f"{README}#json-array-matching (same element)",
        {"d": {"a": [{"exists": True}], "b": [{"exists": True}]}},
        {"d": [{"a": 1, "b": 2}]},
        True,
    ),
    Case(f"{README}#json-array-matching (a leaf pattern does not match an object)", {"detail": ["x"]}, EC2, False),
    Case(
        f"{README}#json-array-matching (an object pattern does not match a leaf)",
        {"source": {"x": ["aws.ec2"]}},
        EC2,
        False,
    ),
    *[
        Case(f"{NESTED_ARRAYS} ({rule} x {event})", data(rule), data(event), expected)
        for rule, event, expected in [
            ("arrayRule1", "arrayEvent1", True),
            ("arrayRule2", "arrayEvent1", True),
            ("arrayRule3", "arrayEvent1", False),
            ("arrayRule1", "arrayEvent2", False),
            ("arrayRule2", "arrayEvent2", False),
            ("arrayRule3", "arrayEvent2", False),
            ("arrayRule1", "arrayEvent3", False),
            ("arrayRule2", "arrayEvent3", False),
            ("arrayRule3", "arrayEvent3", False),
            ("arrayRule1", "arrayEvent4", False),
            ("arrayRule2", "arrayEvent4", False),
            ("arrayRule3", "arrayEvent4", True),
        ]
    ],
    Case(
        f"{README}#caveat-compiled-rules-and-json-keys-with-dots",
        detail(**{"state.status": ["running"]}),
        {"detail": {"state": {"status": "running"}}},
        True,
    ),
    # ---- $or ----
    Case(f"{README}#the-or-primitive (normal)", NORMAL_OR, {**CW, "metricName": "CPUUtilization"}, True),
    Case(f"{README}#the-or-primitive (normal)", NORMAL_OR, {**CW, "namespace": "AWS/ES"}, True),
    Case(f"{README}#the-or-primitive (normal)", NORMAL_OR, {**CW, "metricName": "Other"}, False),
    Case(
        f"{README}#the-or-primitive (normal)", NORMAL_OR, {"source": "aws.ec2", "metricName": "CPUUtilization"}, False
    ),
    Case(
        f"{README}#the-or-primitive (parallel)",
        PARALLEL_OR,
        {"namespace": "AWS/EC2", "detail": {"source": "aws.cloudwatch"}},
        True,
    ),
    Case(
        f"{README}#the-or-primitive (parallel)",
        PARALLEL_OR,
        {"namespace": "AWS/EC2", "detail": {"source": "aws.ec2"}},
        False,
    ),
    Case(
        f"{README}#the-or-primitive (nested)",
        NESTED_OR,
        {**CW, "metricType": "MetricType", "namespace": "AWS/ES", "spaceId": 1000},
        True,
    ),
    Case(
        f"{README}#the-or-primitive (nested)",
        NESTED_OR,
        {**CW, "metricType": "MetricType", "namespace": "AWS/ES", "spaceId": 1},
        False,
    ),
    Case(f"{README}#the-or-primitive (nested)", NESTED_OR, {**CW, "scope": "Service"}, True),
    Case(
        f"{CONTENT}#eb-filtering-complex-example-or",
        {"$or": [{"source": ["aws.ec2"]}, {"detail": {"c-count": [{"numeric": [">", 10]}]}}]},
        EC2,
        True,
    ),
    Case(f"{README}#the-or-primitive (at least 2 objects)", {"$or": [{"source": ["aws.ec2"]}]}, EC2, INVALID),
    Case(f"{COMPILER}#parseIntoOrRelationship (an array)", {"$or": {"source": ["aws.ec2"]}}, EC2, INVALID),
    Case(f"{COMPILER}#parseIntoOrRelationship (objects only)", {"$or": [["a"], ["b"]]}, EC2, INVALID),
    Case(
        f"{README}#the-or-primitive (reserved names)",
        {"$or": [{"numeric": [{"numeric": [">", 1]}]}, {"prefix": [{"prefix": "abc"}]}]},
        EC2,
        INVALID,
    ),
    # ---- the shape of a pattern ----
    Case(f"{COMPILER}#parseObject (a value is an object or an array)", {"source": "aws.ec2"}, EC2, INVALID),
    Case(f"{COMPILER}#parseObject (a value is an object or an array)", {"source": 5}, EC2, INVALID),
    Case(f"{COMPILER}#parseObject (a value is an object or an array)", {"source": None}, EC2, INVALID),
    Case(f"{COMPILER}#writeRules (no empty arrays)", {"source": []}, EC2, INVALID),
    Case(f"{COMPILER}#parseObject (no empty objects)", {"detail": {}}, EC2, INVALID),
    Case(f"{COMPILER}#doCompile (an object)", "[]", EC2, INVALID),
    Case(f"{COMPILER}#doCompile (JSON)", "{not json", EC2, INVALID),
    Case(f"{COMPILER}#writeRules (no nested arrays)", {"source": [["aws.ec2"]]}, EC2, INVALID),
    Case(f"{COMPILER}#processMatchExpression (unknown operator)", detail(state=[{"bogus": 1}]), EC2, INVALID),
    Case(f"{COMPILER}#processMatchExpression (an operator is needed)", detail(state=[{}]), EC2, INVALID),
    Case(
        f"{COMPILER}#processMatchExpression (one key only)",
        detail(state=[{"prefix": "r", "suffix": "g"}]),
        EC2,
        INVALID,
    ),
    # ---- wildcard complexity ("Rule is too complex") ----
    Case(
        f"{COMPLEXITY}#testEvaluateWordEndingInSameLetterThatFollowsWildcard (10: at the limit)",
        detail(
            state=[{"wildcard": "F*eatureFeature"}, {"wildcard": "Fe*atureFeature"}, {"wildcard": "Fea*tureFeature"}]
        ),
        ec2_with(state="FeatureFeature"),
        True,
    ),
    Case(
        f"{COMPLEXITY}#testEvaluateLongSequenceofWildcards (17: over it)",
        detail(state=[{"wildcard": "*a*a*a*a*a*a*a*a*"}]),
        ec2_with(state="aaaaaaaa"),
        INVALID,
    ),
    Case(
        f"{COMPLEXITY}#testEvaluateQuaminaExploder (45)",
        detail(state=[{"wildcard": value} for value in QUAMINA_EXPLODER]),
        EC2,
        INVALID,
    ),
    Case(
        f"{COMPLEXITY}#testEvaluateNestedMachinesViaNextNameStates (11, in a later field)",
        {"source": ["aws.ec2"], "detail": {"state": [{"prefix": "b"}, {"wildcard": "a*a*a*a*a*a*"}]}},
        EC2,
        INVALID,
    ),
    Case(
        f"{COMPLEXITY}#testEvaluateNestedMachinesViaNextNameStates (5: fine)",
        detail(state=[{"prefix": "b"}, {"wildcard": "a*a*a*"}]),
        ec2_with(state="aaa"),
        True,
    ),
    Case(
        f"{COMPLEXITY}#testEvaluateDuplicateWildcardPatterns (a repeated value counts once)",
        detail(state=[{"wildcard": "*a*a*a*a*"}] * 3),
        ec2_with(state="running"),
        False,
    ),
    Case(
        f"{TOO_COMPLEX} ($or alternatives of one field count together)",
        {"$or": [detail(state=[{"wildcard": "*a*a*a*a*"}]), detail(state=[{"wildcard": "*b*b*b*b*"}])]},
        EC2,
        INVALID,
    ),
    Case(
        f"{TOO_COMPLEX} (each field on its own: the worst one counts)",
        {
            "source": [{"wildcard": "*a*a*a*a*"}],
            "detail": {"state": [{"wildcard": "*b*b*b*b*"}]},
        },
        EC2,
        False,
    ),
    Case(
        f"{COMPLEXITY}#getWildcardPatterns (only wildcard values count, not anything-but wildcards)",
        detail(state=[{"anything-but": {"wildcard": ["*a*a*a*a*", "*b*b*b*b*", "*c*c*c*c*"]}}]),
        EC2,
        True,
    ),
]
