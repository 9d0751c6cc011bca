"""Records round-trip through dicts, JSONL, CSV and Parquet, and reject wrong types with the field named."""

import pytest

from creator.io.records import read_records, write_records
from creator.records.errors import DataError
from creator.records.types import Ad, Creative, Fact, GuardFailure, GuardVerdict, HistoryItem, Impression, User

AD = Ad(
    ad_id="7",
    title="BIC Round Stic Pen, Black, 10-Count",
    description="Smooth writing.",
    brand="BIC",
    category="Pens",
    selling_points=["Smooth writing", "Xtra life ink"],
    facts=[Fact(kind="count", text="10-Count", norm="10 count")],
)
USER = User(
    user_id="u1",
    history=[HistoryItem("1", "Gel pen", 1.5e9), HistoryItem("2", "Stapler")],
    profile={"Long-term Interest": "pens"},
)
CREATIVE = Creative(
    ad_id="7",
    title="Pens that last, 10-Count",
    source="personalized",
    segment_id=3,
    scores={"judge": 0.61},
    verdict=GuardVerdict([GuardFailure("too_long", "x", "y")]),
    selling_points_used=["Xtra life ink"],
)


@pytest.mark.parametrize("rec", [AD, USER, CREATIVE, Impression("u1", "7", True, 1.0, "imp1")])
def test_dict_round_trip(rec):
    assert type(rec).from_dict(rec.to_dict()) == rec


@pytest.mark.parametrize("suffix", ["jsonl", "csv", "parquet"])
@pytest.mark.parametrize("rec", [AD, USER, CREATIVE])
def test_file_round_trip(tmp_path, suffix, rec):
    path = tmp_path / f"records.{suffix}"
    write_records([rec, rec.__class__.from_dict({**rec.to_dict(), **_other_id(rec)})], path)
    back = read_records(path, type(rec), id_field="" if isinstance(rec, Creative) else None)
    assert back[0] == rec
    assert len(back) == 2


def _other_id(rec):
    if isinstance(rec, Ad):
        return {"ad_id": "8"}
    if isinstance(rec, User):
        return {"user_id": "u2"}
    return {"segment_id": 4}


def test_verdict_passed_iff_no_failures():
    assert GuardVerdict().passed
    assert not CREATIVE.verdict.passed


@pytest.mark.parametrize(
    "row, field",
    [
        ({"ad_id": "1"}, "title"),
        ({"ad_id": "1", "title": "  "}, "title"),
        ({"ad_id": "1", "title": 5}, "title"),
        ({"ad_id": "1", "title": "x", "selling_points": "a, b"}, "selling_points"),
    ],
)
def test_ad_rejects_bad_fields_by_name(row, field):
    with pytest.raises(DataError) as err:
        Ad.from_dict(row)
    assert err.value.field == field
    assert "Fix:" in str(err.value)


def test_user_history_must_be_list_of_objects():
    with pytest.raises(DataError, match="history"):
        User.from_dict({"user_id": "u", "history": "abc"})
    with pytest.raises(DataError, match="history entries must be objects"):
        User.from_dict({"user_id": "u", "history": ["abc"]})


def test_creative_source_is_checked():
    with pytest.raises(DataError, match="personalized, original or fallback"):
        Creative(ad_id="1", title="t", source="magic")
