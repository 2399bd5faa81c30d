"""Credits and kind read from real formats (verifier.credits).

- The Europass ELM micro-credential samples and the Open Badges 3.0 validator credentials, read in
  place from ../shared/vectors (testkit.vectors; never copied here).
- Examples written from the specifications' field definitions, each a data file in
  tests/verifier/vectors/credits/ holding the credential and the expected answer (Credits.to_dict),
  among them the refusals: other units, ambiguous values, out-of-range numbers, arrays over the
  bound, kinds that contradict each other.
- A property: credits_of never raises, whatever JSON it is given, and what it accepts is in range.
"""

from __future__ import annotations

import json
import math
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from testkit.vectors import VECTORS, vector_json
from verifier.contract_types import Scope
from verifier.credits import ECTS_FRAMEWORK, MAX_ENTRIES, Credits, credits_of

EXAMPLES = Path(__file__).parent / "vectors" / "credits"
EXAMPLE_FILES = sorted(EXAMPLES.glob("*.json"))
OB3_TYPES = {"OpenBadgeCredential", "AchievementCredential"}


def _example(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


# ---------------------------------------------------------------- the shared samples, in place


def test_europass_micro_credential_sample_is_2_ects_of_non_formal_learning() -> None:
    credits = credits_of(vector_json("elm/Sample-MC-Annex1-unsigned.jsonld"))
    assert credits == Credits(source="elm", ects=Decimal(2), ects_problem=None,
                              kind=Scope.NON_FORMAL, kind_problem=None,
                              achievement=None)
    assert credits.to_dict()["ects"] == 2
    assert credits.to_dict()["kind"] == "non-formal"


def test_signed_europass_sample_is_read_from_its_jades_payload() -> None:
    """The signed sample is a JAdES JSON envelope whose ``payload`` is the credential as a JSON
    string. credits_of reads credentials, not envelopes (the JAdES signature is not something
    this project verifies): the envelope itself states no credits, its payload the same as the
    unsigned sample."""
    envelope = vector_json("elm/Sample-MC-Annex1-signed.jsonld")
    assert set(envelope) == {"payload", "signatures"}
    assert credits_of(envelope).ects_problem == "no credit points"
    credits = credits_of(json.loads(envelope["payload"]))
    assert (credits.source, credits.ects, credits.kind) == ("elm", Decimal(2), Scope.NON_FORMAL)


def test_the_shipped_europass_example_is_3_ects_of_non_formal_learning() -> None:
    """anchor_service/examples/elm-europass.json (the demo's and the README's Europass
    credential) in the ELM 3 shape credits_of reads: ECTS by the framework's concept, the
    non-formal learning-setting concept, the specification's own id as the achievement."""
    path = Path(__file__).parents[2] / "anchor_service" / "examples" / "elm-europass.json"
    credits = credits_of(json.loads(path.read_text(encoding="utf-8")))
    assert credits == Credits(
        source="elm", ects=Decimal(3), ects_problem=None, kind=Scope.NON_FORMAL,
        kind_problem=None,
        achievement="https://demo-university.example/courses/sustainable-supply-chains")


def _ob3_files() -> list[str]:
    folder = VECTORS / "ob3"
    return sorted(str(path.relative_to(VECTORS)) for path in folder.rglob("*") if path.is_file())


def test_the_open_badges_samples_are_all_there() -> None:
    # 15 files (SOURCES.md): a missing folder must fail, not parametrize to nothing.
    assert len(_ob3_files()) == 15, _ob3_files()


@pytest.mark.parametrize("relative", _ob3_files())
def test_open_badges_samples_state_no_credit_points(relative: str) -> None:
    """None of the validator's credentials has creditsEarned or creditsAvailable. Those typed
    OpenBadgeCredential/AchievementCredential are read as Open Badges; the others (an
    EndorsementCredential, a status list, one with a deliberately wrong type) as no form."""
    credential = vector_json(relative)
    types = credential.get("type", [])
    credits = credits_of(credential)
    assert credits.ects is None
    assert credits.ects_problem == "no credit points"
    assert credits.source == ("ob3" if OB3_TYPES & set(types) else "none")
    assert credits.kind is None
    assert credits.kind_problem == "no kind stated (no learningScope)"


# ---------------------------------------------------------------- examples from the specifications


def test_the_examples_are_there() -> None:
    assert len(EXAMPLE_FILES) >= 50


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda path: path.stem)
def test_example(path: Path) -> None:
    example = _example(path)
    credits = credits_of(example["credential"])
    assert credits.to_dict() == example["expected"], example["description"]
    expected_ects = example["expected"]["ects"]
    # The Decimal is exact (never through float arithmetic): 0.1 is 0.1.
    assert credits.ects == (None if expected_ects is None else Decimal(str(expected_ects)))


@pytest.mark.parametrize("count", [MAX_ENTRIES, MAX_ENTRIES + 1])
def test_credit_points_are_read_up_to_the_bound(count: int) -> None:
    example = _example(EXAMPLES / "elm-non-formal.json")["credential"]
    spec = example["credentialSubject"]["hasClaim"]["specifiedBy"]
    spec["creditPoint"] = [spec["creditPoint"]] * count
    credits = credits_of(example)
    if count <= MAX_ENTRIES:
        assert credits.ects == Decimal(5)
    else:
        assert credits.ects is None
        assert credits.ects_problem == "creditPoint has 65 entries, more than the 64 read"


def test_ects_is_the_elm_ects_concept() -> None:
    example = _example(EXAMPLES / "elm-non-formal.json")["credential"]
    framework = example["credentialSubject"]["hasClaim"]["specifiedBy"]["creditPoint"]["framework"]
    assert framework["id"] == ECTS_FRAMEWORK
    # The same label on another concept is not ECTS: the id decides, never the label.
    framework["id"] = ECTS_FRAMEWORK + "0"
    assert credits_of(example).ects_problem == "non-ECTS unit 'European Credit Transfer System'"


def test_a_json_document_that_is_not_an_object_is_answered() -> None:
    values: list[Any] = [[], "text", 3, None]
    for value in values:
        credits = credits_of(value)
        assert (credits.source, credits.ects, credits.kind) == ("none", None, None)
        assert credits.ects_problem == "not a credential (not a JSON object)"


# ---------------------------------------------------------------- never raises


NAMES = ["type", "credentialSubject", "hasClaim", "specifiedBy", "creditPoint", "creditReceived",
         "framework", "point", "id", "learningSetting", "learningScope", "prefLabel", "en",
         "achievement", "creditsEarned", "creditsAvailable", "alignment", "targetFramework",
         "targetUrl", "targetCode", "ectsCredits", "EuropeanDigitalCredential",
         "OpenBadgeCredential"]
SCALARS = (st.none() | st.booleans() | st.integers() | st.integers(min_value=-(10 ** 80),
                                                                   max_value=10 ** 80)
           | st.floats(allow_nan=True, allow_infinity=True)
           | st.sampled_from([*NAMES, ECTS_FRAMEWORK, "5", "2.5", "2.125", "-1", "NaN", "1e2",
                              "formal-degree", "non-formal", "ECTS",
                              "http://data.europa.eu/snb/learning-setting/6fd4685715",
                              "http://data.europa.eu/snb/learning-setting/e207a81fc7"])
           | st.text(max_size=8))
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=5) | st.dictionaries(
    st.sampled_from(NAMES) | st.text(max_size=4), inner, max_size=6), max_leaves=40)


def _check_answer(credits: Credits) -> None:
    assert (credits.ects is None) == (credits.ects_problem is not None)
    assert (credits.kind is None) == (credits.kind_problem is not None)
    if credits.ects is not None:
        assert 0 < credits.ects <= 1000
        assert credits.ects == credits.ects.quantize(Decimal("0.01"))
    if credits.kind is not None:
        assert credits.kind in (Scope.FORMAL_DEGREE, Scope.FORMAL_NON_DEGREE, Scope.NON_FORMAL)
    text = json.dumps(credits.to_dict(), allow_nan=False)
    ects = json.loads(text)["ects"]
    assert ects is None or (math.isfinite(ects) and Decimal(str(ects)) == credits.ects)


@settings(max_examples=400, deadline=None)
@given(JSON)
def test_credits_of_never_raises_on_arbitrary_json(value: Any) -> None:
    _check_answer(credits_of(value))


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(EXAMPLE_FILES), st.lists(st.sampled_from(NAMES), min_size=1, max_size=4),
       JSON)
def test_credits_of_never_raises_on_mutated_examples(path: Path, keys: list[str],
                                                     value: Any) -> None:
    """A real example with one value on a named path replaced by arbitrary JSON."""
    credential = _example(path)["credential"]
    holder: Any = credential
    for key in keys[:-1]:
        child = holder.get(key) if isinstance(holder, dict) else None
        if isinstance(child, list) and child and isinstance(child[0], dict):
            child = child[0]
        if not isinstance(child, dict):
            break
        holder = child
    holder[keys[-1]] = value
    _check_answer(credits_of(credential))
