"""The judged sweep derives a thresholded run from an unthresholded one; that must equal a real run."""

from fake_parts import fake_components, make_ads, make_users

from benchmarks.batch_quality import served, served_at
from creator.backends.base import SamplingConfig
from creator.pipeline.catalog import PipelineConfig, generate_for_catalog


def test_served_at_threshold_equals_a_run_with_that_threshold():
    users, ads = make_users(), make_ads()

    def run(threshold):
        parts = fake_components()
        return generate_for_catalog(ads, users, parts, PipelineConfig(clusters=3, match_threshold=threshold),
                                    SamplingConfig(n=2))

    unpruned = run(None)
    assert served_at(unpruned, users, ads, None) == (served(unpruned, users, ads), unpruned.summary.generator_requests)
    for t in (0.4, 0.5, 0.6):
        real = run(t)
        titles, calls = served_at(unpruned, users, ads, t)
        assert 0 < calls < unpruned.summary.generator_requests
        assert calls == real.summary.generator_requests
        assert titles == served(real, users, ads)
