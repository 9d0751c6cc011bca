"""The README's demo job, on a small slice of the bundled sample: it runs and its summary adds up."""

import json

from app.cli import main


def test_quickstart_on_a_slice(sample_dir, tmp_path, capsys):
    data = tmp_path / "slice"
    assert main(["data", "sample", str(sample_dir), "--users", "40", "--ads", "12", "--out", str(data)]) == 0
    out = tmp_path / "run"
    assert main(["quickstart", "--data", str(data), "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["catalog"]["ads"] == 12 and summary["catalog"]["users"] == 40
    first = summary["embeddings"]
    assert (
        first["computed"] > 12
    )  # ad titles and distinct history titles (ads seen in histories hit the cache)
    assert len(summary["preview"]) == 3
    # a rerun is served from the embedding cache
    assert main(["quickstart", "--data", str(data), "--out", str(out)]) == 0
    again = json.loads((out / "summary.json").read_text())
    assert again["embeddings"]["computed"] == 0
    assert again["embeddings"]["cached"] == first["computed"] + first["cached"]
    assert "== summary" in capsys.readouterr().out
