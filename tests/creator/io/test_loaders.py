"""Loaders on small fixtures and on the real shared data (skipped with a reason when it is absent)."""

import json

import pytest

from creator.io import load_catalog
from creator.io.hllm import HLLM_COLUMNS, write_hllm_parquet

ITEMS = {
    "1": {
        "title": "BIC Pen, Black, 10-Count",
        "description": "['Smooth writing ink for everyday notes.']",
        "brand": "BIC",
        "categories": "",
    },
    "2": {
        "title": "Sparco Tape, 3/4 x 1000 Inches, 12-Pack",
        "description": "",
        "brand": "Sparco",
        "categories": "",
    },
    "3": {
        "title": "Avery Labels (8692)",
        "description": "['<b>Print</b> &amp;quot;fast&amp;quot; labels.']",
        "brand": "Avery",
        "categories": "",
    },
}
CSV = (
    "user_id,history_item_title,item_title,history_item_id,item_id,history_item_sid,item_sid\n"
    "A1,\"['BIC Pen, Black, 10-Count']\",Sparco Tape,[1],2,[],x\n"
    "A1,\"['BIC Pen, Black, 10-Count', 'Sparco Tape']\",Avery Labels,\"[1, 2]\",3,[],x\n"
    "A2,\"['Old pen']\",Avery Labels,[99],3,[],x\n"
)


@pytest.fixture
def amazon_fixture(tmp_path):
    (tmp_path / "items.json").write_text(json.dumps(ITEMS))
    (tmp_path / "valid.csv").write_text(CSV)
    return tmp_path


def test_amazon_fixture(amazon_fixture):
    cat = load_catalog(amazon_fixture, "amazon2018")
    assert sorted(cat.ads) == ["1", "2", "3"]
    # A1's rows are sliding windows over one sequence: the longest history plus its next item.
    assert [h.item_id for h in cat.users["A1"].history] == ["1", "2", "3"]
    assert [h.title for h in cat.users["A2"].history] == ["Old pen", "Avery Labels (8692)"]
    assert cat.missing_ids["history"] == 1 and cat.missing_examples["history"] == ["99"]
    assert cat.ads["3"].selling_points == ['Print "fast" labels']
    rows = list(cat.next_item_rows())
    assert [(u.user_id, len(u.history), target) for u, target in rows] == [
        ("A1", 1, "2"),
        ("A1", 2, "3"),
        ("A2", 1, "3"),
    ]


def test_mind_fixture(tmp_path):
    (tmp_path / "news.tsv").write_text(
        "N1\tsports\tgolf\tTiger wins again\tA 5-stroke win.\turl\t[]\t[]\n"
        "N2\tnews\tus\tRain on Sunday\tExpect 2 inches.\turl\t[]\t[]\n"
    )
    (tmp_path / "behaviors.tsv").write_text(
        "1\tU1\t11/12/2019 2:14:46 PM\tN1 N404\tN2-1 N1-0 N999-0\n2\tU2\t11/13/2019 5:53:12 AM\t\tN1-1\n"
    )
    cat = load_catalog(tmp_path, "mind")
    s = cat.summary()
    assert (s["ads"], s["users"], s["impressions"], s["clicks"]) == (2, 2, 4, 2)
    assert s["missing_ids"] == {"history": 1, "impressions": 1}
    assert s["users_with_empty_history"] == 1
    assert [h.item_id for h in cat.users["U1"].history] == ["N1"]


def test_hllm_parquet_round_trip(tmp_path):
    row = {
        "user_profile": {"Long-term Interest": "fountain pens"},
        "original_title": "Pilot Pen, Fine, 12-Pack",
        "original_description": "Smooth gel ink. Comfortable grip.",
        "prompt1": "p1",
        "prompt2": "p2",
        "response": "Fountain-pen fans: Pilot Pen, Fine, 12-Pack",
        "title_list": ["Ink bottle", "Nib set"],
        "item_id_list": ["5", "6"],
        "uid": "A9",
    }
    path = write_hllm_parquet([row], tmp_path / "train.parquet")
    import pyarrow.parquet as pq

    assert set(HLLM_COLUMNS) <= set(pq.read_schema(path).names)
    cat = load_catalog(path, "auto")
    assert cat.format == "hllm"
    user = cat.users["A9"]
    assert user.profile == {"Long-term Interest": "fountain pens"}
    assert [h.title for h in user.history] == ["Ink bottle", "Nib set"]
    assert cat.references == [{"user_id": "A9", "ad_id": next(iter(cat.ads)), "title": row["response"]}]


@pytest.mark.shared_data
def test_amazon_real_data(amazon_dir):
    cat = load_catalog(amazon_dir, "amazon2018")
    s = cat.summary()
    assert s["ads"] == 3459
    assert s["users"] == 3231
    assert s["rejected_rows"] == 0
    # every row of valid.csv and test.csv is one (history, next item) window of some user's sequence
    assert s["interactions"] == sum(len(u.history) for u in cat.users.values())
    assert s["cleaning"]["repaired_descriptions"] == 9
    text = " ".join(" ".join(a.selling_points) for a in cat.ads.values())
    for junk in ("<!--", "headerM", "&amp;", "&quot;", "amp;quot", "{color"):
        assert junk not in text


@pytest.mark.shared_data
def test_mind_real_sample_reports_missing_ids(mind_dir):
    cat = load_catalog(mind_dir, "mind")
    s = cat.summary()
    assert s["ads"] == 2000
    assert s["missing_ids"]["history"] > 0 and s["missing_ids"]["impressions"] > 0
    assert s["impressions"] > s["clicks"] > 0


def test_bundled_sample_loads(sample_dir):
    cat = load_catalog(sample_dir)
    s = cat.summary()
    assert (s["ads"], s["users"], s["rejected_rows"]) == (300, 1000, 0)
    assert all(ad.facts for ad in cat.ads.values())
