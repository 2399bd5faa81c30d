"""Credit points (ECTS) and the kind of learning a credential states, read from its own format.

    credits = credits_of(credential)
    credits.ects          # Decimal, or None with credits.ects_problem saying why
    credits.kind          # one Scope bit, or None with credits.kind_problem saying why

Pure: no I/O, no chain. Three forms are read (docs/credits.md has the rules and the sources):

- Europass ELM / EDC: ``credentialSubject.hasClaim`` (``LearningAchievement``), credits from the
  claim's ``creditReceived`` or else its specification's ``creditPoint``; only the ECTS framework
  concept (:data:`ECTS_FRAMEWORK`) counts. The kind comes from the specification's
  ``learningSetting`` (non-formal, or formal with ``learningScope`` saying whether within a
  programme).
- Open Badges 3.0: ``credentialSubject.creditsEarned``, else the achievement's
  ``creditsAvailable``; they count as ECTS only when the achievement has an alignment to ECTS.
- The plain form: ``credentialSubject.ectsCredits`` (a JSON number or a decimal string).

The kind otherwise comes from ``learningScope`` (:func:`verifier.scope.declared_scopes`).
Anything ambiguous, inconsistent, out of range or in another unit is refused with a reason
instead of guessed: :func:`credits_of` never raises, it answers with the problem.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Final, Literal

from verifier.contract_types import SCOPES, Scope
from verifier.errors import ScopeShapeError
from verifier.scope import declared_scopes

__all__ = [
    "ECTS_FRAMEWORK",
    "FORMAL_LEARNING",
    "MAX_ECTS",
    "MAX_ENTRIES",
    "NON_FORMAL_LEARNING",
    "Credits",
    "credits_of",
    "ects_number",
]

#: The Europass ELM concept of the European Credit Transfer and Accumulation System
#: (``CreditPoint.framework``, scheme http://data.europa.eu/snb/education-credit/25831c2).
ECTS_FRAMEWORK: Final = "http://data.europa.eu/snb/education-credit/6fcec5c5af"
#: The ELM learning-setting concepts (scheme http://data.europa.eu/snb/learning-setting/25831c2).
FORMAL_LEARNING: Final = "http://data.europa.eu/snb/learning-setting/6fd4685715"
NON_FORMAL_LEARNING: Final = "http://data.europa.eu/snb/learning-setting/e207a81fc7"
#: At most this many entries in any array the reading walks (claims, credit points,
#: specifications, alignments, subjects): beyond it the credential is refused, not read.
MAX_ENTRIES: Final = 64
#: The largest number of ECTS one credential may carry (a doctorate is at most a few hundred).
MAX_ECTS: Final = Decimal(1000)

Source = Literal["elm", "ob3", "plain", "none"]

_ELM_TYPE: Final = "EuropeanDigitalCredential"
# Europass ids numbered inside one document (``urn:epass:learningAchievementSpec:1``): not an
# achievement's identity (see _global_iri).
_DOCUMENT_LOCAL_URN: Final = "urn:epass:"
_OB3_TYPES: Final = frozenset({"OpenBadgeCredential", "AchievementCredential"})
_ECTS_NAMES: Final = frozenset({"ects", "european credit transfer and accumulation system"})
# A decimal as written in a JSON string: digits, optionally a point and digits. No sign, no
# exponent, no "NaN" or "Infinity" (which Decimal() would accept).
_DECIMAL_TEXT: Final = re.compile(r"[0-9]{1,16}(?:\.[0-9]{1,16})?", re.ASCII)
_CENT: Final = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class Credits:
    """What a credential states about its credit points and its kind of learning.

    ``source`` is the form that was read (``none`` when the credential is in none of them);
    ``ects`` is None when the credential states no credits or they were refused, and
    ``ects_problem`` says which; likewise ``kind`` and ``kind_problem``. ``achievement`` is
    the id of what was achieved (an ELM specification or claim, an Open Badges achievement),
    so that the same achievement from the same issuer can be told apart from another; None
    when that id is local to the document (a blank node ``_:``, a Europass ``urn:epass:`` id),
    since such ids do not tell one course from another."""

    source: Source
    ects: Decimal | None
    ects_problem: str | None
    kind: Scope | None
    kind_problem: str | None
    achievement: str | None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: ``ects`` a number (or null), ``kind`` a scope name (or null)."""
        return {"source": self.source,
                "ects": None if self.ects is None else ects_number(self.ects),
                "ectsProblem": self.ects_problem,
                "kind": None if self.kind is None else self.kind.label,
                "kindProblem": self.kind_problem, "achievement": self.achievement}


def ects_number(value: Decimal) -> int | float:
    """An ECTS value (or a sum of them) as a JSON number: an integer when whole. Values have at
    most two decimal places, which a float holds exactly enough to be read back to the same
    Decimal (``Decimal(str(x))``)."""
    return int(value) if value == value.to_integral_value() else float(value)


class _RefusedError(Exception):
    """A reading refused: the message is the reason given in the answer."""


@dataclass(frozen=True, slots=True)
class _Reading:
    """Credits as one form states them: a value, or why it was refused."""

    source: Source
    ects: Decimal | None
    problem: str | None


def credits_of(credential: Mapping[str, Any]) -> Credits:
    """The ECTS credits and the kind ``credential`` states, each with the reason when there is
    none. Never raises: whatever the document holds, the answer says what was refused."""
    if not isinstance(credential, Mapping):
        return Credits("none", None, "not a credential (not a JSON object)", None,
                       "not a credential (not a JSON object)", None)
    types = _types(credential)
    try:
        subjects = _objects(credential.get("credentialSubject"), "credentialSubject")
    except _RefusedError as exc:
        return Credits("none", None, str(exc), None, str(exc), None)
    is_elm = _ELM_TYPE in types or any("hasClaim" in subject for subject in subjects)
    is_ob3 = bool(_OB3_TYPES & types)

    readings: list[_Reading] = []
    elm = _Elm(subjects) if is_elm else None
    if elm is not None and elm.reading is not None:
        readings.append(elm.reading)
    if is_ob3:
        readings += [r for r in (_ob3_reading(subject) for subject in subjects) if r]
    readings += [r for r in (_plain_reading(subject) for subject in subjects) if r]

    fallback: Source = "elm" if is_elm else "ob3" if is_ob3 else "none"
    source, ects, ects_problem = _combine(readings, fallback)
    kind, kind_problem = _kind(credential, elm)
    achievement = elm.achievement if elm is not None else _achievement_of(subjects)
    return Credits(source, ects, ects_problem, kind, kind_problem, achievement)


# ------------------------------------------------------------------------------ shapes


def _types(credential: Mapping[str, Any]) -> frozenset[str]:
    value = credential.get("type")
    if isinstance(value, str):
        return frozenset({value})
    if isinstance(value, list):
        return frozenset(item for item in value[:MAX_ENTRIES] if isinstance(item, str))
    return frozenset()


def _objects(value: object, where: str) -> list[Mapping[str, Any]]:
    """The objects of an "object or array of objects" property (missing: none). Entries that
    are not objects (an IRI naming the object elsewhere) are not read."""
    if value is None:
        return []
    if isinstance(value, Mapping):
        return [value]
    if isinstance(value, list):
        if len(value) > MAX_ENTRIES:
            raise _RefusedError(f"{where} has {len(value)} entries, more than the {MAX_ENTRIES} "
                           "read")
        return [item for item in value if isinstance(item, Mapping)]
    return []


def _iri(value: object) -> str | None:
    """The id of a JSON-LD node given as an object with ``id`` or as its IRI."""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping) and isinstance(value.get("id"), str):
        return str(value["id"])
    return None


def _global_iri(value: object) -> str | None:
    """:func:`_iri`, but None for an id that is local to its document: a blank node (``_:``) or
    a Europass ``urn:epass:`` id. Europass builders number those inside each credential (every
    credential's specification may be ``urn:epass:learningAchievementSpec:1``), so they cannot
    tell one course from another and are no identity of an achievement."""
    iri = _iri(value)
    if iri is None or iri.startswith("_:") or iri.lower().startswith(_DOCUMENT_LOCAL_URN):
        return None
    return iri


def _label(value: object) -> str | None:
    """A concept's ``prefLabel`` (English first), for messages."""
    if not isinstance(value, Mapping):
        return None
    label = value.get("prefLabel")
    if isinstance(label, str):
        return label
    if isinstance(label, Mapping):
        for text in (label.get("en"), *label.values()):
            first = text[0] if isinstance(text, list) and text else text
            if isinstance(first, str):
                return first
    return None


def _shown(value: object) -> str:
    """A value as named in a message, short."""
    text = repr(value) if isinstance(value, str) else _json_name(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _json_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int) and abs(value) >= 10 ** 30:
        return "a number of more than 30 digits"  # repr() of a huge int is slow, or refused
    if isinstance(value, (int, float)):
        return repr(value)
    return "an object" if isinstance(value, Mapping) else "an array" if isinstance(
        value, list) else type(value).__name__


# ------------------------------------------------------------------------------ values


def _ects_value(value: object, what: str, *, strings: bool = True) -> Decimal:
    """A number of ECTS from a JSON number, or (when ``strings``) a decimal string; refused
    unless finite, 0 < x <= 1000 and with at most two decimal places."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise _RefusedError(f"{what} is {_shown(value)}, not a number")
    if isinstance(value, str):
        if not strings:
            raise _RefusedError(f"{what} is the string {_shown(value)}: it must be a JSON number")
        if not _DECIMAL_TEXT.fullmatch(value):
            raise _RefusedError(f"{what} {_shown(value)} is not a decimal number")
        number = Decimal(value)
    elif isinstance(value, int):
        if abs(value) > 10 ** 16:  # beyond any bound: refused without converting it whole
            raise _RefusedError(f"{what} {_shown(value)} is out of range (0 < ECTS <= {MAX_ECTS})")
        number = Decimal(value)
    else:
        try:
            # Through its shortest text, never float arithmetic: 0.1 stays 0.1.
            number = Decimal(str(value))
        except InvalidOperation:  # pragma: no cover - str(float) always parses
            raise _RefusedError(f"{what} {_shown(value)} is not a number") from None
    if not number.is_finite():
        raise _RefusedError(f"{what} {_shown(value)} is not a finite number")
    if not 0 < number <= MAX_ECTS:
        raise _RefusedError(f"{what} {_shown(value)} is out of range (0 < ECTS <= {MAX_ECTS})")
    if number != number.quantize(_CENT):
        raise _RefusedError(f"{what} {_shown(value)} has more than two decimal places")
    return _canonical(number)


def _canonical(number: Decimal) -> Decimal:
    """2.50 → 2.5, 100.00 → 100 (never 1E+2)."""
    if number == number.to_integral_value():
        return number.quantize(Decimal(1))
    return number.normalize()


def _one_value(values: list[Decimal], what: str) -> Decimal:
    distinct = list(dict.fromkeys(values))
    if len(distinct) > 1:
        stated = ", ".join(str(value) for value in distinct[:4])
        raise _RefusedError(f"ambiguous: {what} state different numbers of ECTS ({stated})")
    return distinct[0]


def _combine(readings: list[_Reading], fallback: Source
             ) -> tuple[Source, Decimal | None, str | None]:
    if not readings:
        return fallback, None, "no credit points"
    for reading in readings:
        if reading.problem is not None:
            return reading.source, None, reading.problem
    values = {(reading.source, reading.ects) for reading in readings}
    if len({ects for _, ects in values}) > 1:
        stated = ", ".join(f"{source} {ects}" for source, ects in sorted(values, key=str))
        return readings[0].source, None, f"ambiguous: different numbers of ECTS ({stated})"
    return readings[0].source, readings[0].ects, None


# ------------------------------------------------------------------------------ ELM / EDC


class _Elm:
    """A Europass ELM / EDC credential's claims: credits, learning setting, achievement."""

    def __init__(self, subjects: list[Mapping[str, Any]]) -> None:
        self.reading: _Reading | None = None
        self.setting: Literal["formal", "non-formal"] | None = None
        self.setting_problem: str | None = None
        self.achievement: str | None = None
        try:
            claims = [claim for subject in subjects
                      for claim in _objects(subject.get("hasClaim"), "hasClaim")]
            if len(claims) > MAX_ENTRIES:
                raise _RefusedError(f"the credential has {len(claims)} claims, more than the "
                               f"{MAX_ENTRIES} read")
            specs = [_objects(claim.get("specifiedBy"), "specifiedBy") for claim in claims]
        except _RefusedError as exc:
            self.reading = _Reading("elm", None, str(exc))
            self.setting_problem = str(exc)
            return
        self._credits(claims, specs)
        self._setting(specs)
        if self.achievement is None and len(claims) == 1:
            self.achievement = self._achievement_id(claims[0], specs[0])

    @staticmethod
    def _achievement_id(claim: Mapping[str, Any], specs: list[Mapping[str, Any]]) -> str | None:
        spec_ids = [_global_iri(spec) for spec in specs]
        if len(spec_ids) == 1 and spec_ids[0] is not None:
            return spec_ids[0]
        return _global_iri(claim)

    def _credits(self, claims: list[Mapping[str, Any]],
                 specs: list[list[Mapping[str, Any]]]) -> None:
        credited: list[tuple[int, Decimal]] = []
        try:
            for index, (claim, claim_specs) in enumerate(zip(claims, specs, strict=True)):
                value = self._claim_credits(claim, claim_specs)
                if value is not None:
                    credited.append((index, value))
            if len(credited) > 1:
                raise _RefusedError(f"ambiguous: {len(credited)} claims state credit points "
                               "(one credential, one number of ECTS)")
        except _RefusedError as exc:
            self.reading = _Reading("elm", None, str(exc))
            return
        if credited:
            index, value = credited[0]
            self.reading = _Reading("elm", value, None)
            self.achievement = self._achievement_id(claims[index], specs[index])

    @staticmethod
    def _claim_credits(claim: Mapping[str, Any],
                       specs: list[Mapping[str, Any]]) -> Decimal | None:
        # What the learner received overrides what the specification offers.
        if "creditReceived" in claim:
            points = _objects(claim.get("creditReceived"), "creditReceived")
            where = "creditReceived"
        else:
            points = [point for spec in specs
                      for point in _objects(spec.get("creditPoint"), "creditPoint")]
            where = "specifiedBy.creditPoint"
        if len(points) > MAX_ENTRIES:
            raise _RefusedError(f"{where} has {len(points)} entries, more than the {MAX_ENTRIES} "
                           "read")
        values: list[Decimal] = []
        for point in points:
            framework = point.get("framework")
            framework_id = _iri(framework)
            if framework_id != ECTS_FRAMEWORK:
                named = _label(framework) or framework_id
                raise _RefusedError("non-ECTS unit " + (repr(named) if named else
                                                   "(the credit point names no framework)"))
            values.append(_ects_value(point.get("point"), f"{where}.point"))
        if not values:
            return None
        return _one_value(values, f"the ECTS credit points of {where}")

    def _setting(self, specs: list[list[Mapping[str, Any]]]) -> None:
        found: list[Literal["formal", "non-formal"]] = []
        for spec in (spec for claim_specs in specs for spec in claim_specs):
            if "learningSetting" not in spec:
                continue
            setting = spec.get("learningSetting")
            setting_id = _iri(setting)
            if setting_id == NON_FORMAL_LEARNING:
                found.append("non-formal")
            elif setting_id == FORMAL_LEARNING:
                found.append("formal")
            else:
                named = setting_id or _label(setting) or _json_name(setting)
                self.setting_problem = (f"unknown learning setting {named!r}: neither the "
                                        "ELM formal nor the non-formal learning concept")
                return
        distinct = list(dict.fromkeys(found))
        if len(distinct) > 1:
            self.setting_problem = ("ambiguous: the claims' learning settings differ "
                                    "(formal and non-formal)")
        elif distinct:
            self.setting = distinct[0]


# ------------------------------------------------------------------------------ Open Badges 3.0


def _ob3_reading(subject: Mapping[str, Any]) -> _Reading | None:
    achievement = subject.get("achievement")
    achievement = achievement if isinstance(achievement, Mapping) else {}
    if "creditsEarned" not in subject and "creditsAvailable" not in achievement:
        return None
    try:
        earned = available = None
        if "creditsEarned" in subject:
            earned = _ects_value(subject["creditsEarned"], "creditsEarned", strings=False)
        if "creditsAvailable" in achievement:
            available = _ects_value(achievement["creditsAvailable"],
                                    "achievement.creditsAvailable", strings=False)
        if earned is not None and available is not None and earned > available:
            raise _RefusedError(f"inconsistent: creditsEarned {earned} exceeds the achievement's "
                           f"creditsAvailable {available}")
        if not _aligned_to_ects(achievement):
            raise _RefusedError("credits without a unit: Open Badges 3.0 credits are credit hours "
                           "(generally semester or quarter hours) unless the achievement has "
                           "an alignment to ECTS")
    except _RefusedError as exc:
        return _Reading("ob3", None, str(exc))
    return _Reading("ob3", earned if earned is not None else available, None)


def _aligned_to_ects(achievement: Mapping[str, Any]) -> bool:
    for alignment in _objects(achievement.get("alignment"), "achievement.alignment"):
        framework = alignment.get("targetFramework")
        if isinstance(framework, str) and framework.strip().casefold() in _ECTS_NAMES:
            return True
        if ECTS_FRAMEWORK in (alignment.get("targetUrl"), alignment.get("targetCode")):
            return True
    return False


# ------------------------------------------------------------------------------ plain form


def _plain_reading(subject: Mapping[str, Any]) -> _Reading | None:
    if "ectsCredits" not in subject:
        return None
    try:
        return _Reading("plain", _ects_value(subject["ectsCredits"], "ectsCredits"), None)
    except _RefusedError as exc:
        return _Reading("plain", None, str(exc))


def _achievement_of(subjects: list[Mapping[str, Any]]) -> str | None:
    """``credentialSubject.achievement`` (an IRI, or an object with ``id``), when one subject
    names exactly one."""
    found = {achievement for subject in subjects
             if (achievement := _global_iri(subject.get("achievement"))) is not None}
    return found.pop() if len(found) == 1 else None


# ------------------------------------------------------------------------------ kind


def _kind(credential: Mapping[str, Any], elm: _Elm | None) -> tuple[Scope | None, str | None]:
    scope, problem = _declared_kind(credential)
    if problem is not None:
        return None, problem
    if elm is None or (elm.setting is None and elm.setting_problem is None):
        return (scope, None) if scope is not None else (None, "no kind stated (no learningScope)")
    if elm.setting_problem is not None:
        return None, elm.setting_problem
    return _with_setting(scope, elm.setting)


def _declared_kind(credential: Mapping[str, Any]) -> tuple[Scope | None, str | None]:
    """The one kind ``learningScope`` declares (None when none), or why it is refused."""
    try:
        declared = declared_scopes(credential)
    except ScopeShapeError as exc:
        return None, f"unreadable learningScope: {exc}"
    unknown = [name for name in declared if name not in SCOPES]
    if unknown:
        return None, "unknown learningScope " + ", ".join(map(repr, unknown[:4]))
    if len(declared) > 1:
        return None, "ambiguous: several kinds declared (" + ", ".join(declared) + ")"
    return (SCOPES[declared[0]] if declared else None), None


def _with_setting(scope: Scope | None, setting: Literal["formal", "non-formal"] | None
                  ) -> tuple[Scope | None, str | None]:
    """The kind from an ELM learning setting and the declared ``learningScope``: non-formal
    needs nothing more; formal needs learningScope to say whether within a programme; a
    learningScope that says otherwise than the setting is refused."""
    if setting == "non-formal":
        if scope is not None and scope != Scope.NON_FORMAL:
            return None, (f"learningScope {scope.label} contradicts the ELM learning setting "
                          "(non-formal learning)")
        return Scope.NON_FORMAL, None
    if scope is None:
        return None, ("formal learning; whether within a programme is not stated: add "
                      "learningScope")
    if scope == Scope.NON_FORMAL:
        return None, ("learningScope non-formal contradicts the ELM learning setting "
                      "(formal learning)")
    return scope, None
