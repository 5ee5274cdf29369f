"""What the results DB keeps of a merge_stats.json beside the overall statistics."""

from kernels.merging.statistics import stored_overall


def test_suspect_error_model_and_images_travel_with_the_overall_statistics():
    stats = {
        "overall": {"cc_half": 0.4, "cc_star": 0.76},
        "shells": [{"d_min": 2.0}],
        "suspect": {"reason": "CC1/2 0.400 < 0.5"},
        "error_model": {"a": 1.3, "b": 0.04, "normal_probability_slope": 1.0},
        "images": 812,
        "results": ["/big/list/of/dirs"],  # not for the DB
    }
    assert stored_overall(stats) == {
        "cc_half": 0.4,
        "cc_star": 0.76,
        "suspect": {"reason": "CC1/2 0.400 < 0.5"},
        "error_model": {"a": 1.3, "b": 0.04, "normal_probability_slope": 1.0},
        "images": 812,
    }
    assert stored_overall({"overall": {"cc_half": 0.9}}) == {"cc_half": 0.9}  # a clean merge
