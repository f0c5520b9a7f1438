import numpy as np
import pytest

from crimecast.domain.keys import SeriesKey
from crimecast.domain.reconcile import Band, by_start, coherence_gaps, ipf, reconcile

CITY = SeriesKey(None, "ALL")


def _band(*values: float) -> Band:
    y = np.array(values, dtype=float)
    return Band(y, y * 0.8, y * 1.25)


def _incoherent() -> dict[SeriesKey, Band]:
    return {
        CITY: _band(110, 220),
        SeriesKey(None, "THEFT"): _band(60, 100),
        SeriesKey(None, "BATTERY"): _band(40, 100),
        SeriesKey(1, "ALL"): _band(50, 80),
        SeriesKey(2, "ALL"): _band(40, 100),
        SeriesKey(1, "THEFT"): _band(30, 60),
        SeriesKey(1, "BATTERY"): _band(30, 30),
        SeriesKey(2, "THEFT"): _band(20, 50),
        SeriesKey(2, "BATTERY"): _band(20, 50),
    }


def test_every_level_adds_up_after_reconciling() -> None:
    out = reconcile(_incoherent(), unplaced_share=0.1)
    city = out[CITY].yhat
    np.testing.assert_allclose(out[SeriesKey(None, "THEFT")].yhat + out[SeriesKey(None, "BATTERY")].yhat, city)
    np.testing.assert_allclose(out[SeriesKey(1, "ALL")].yhat + out[SeriesKey(2, "ALL")].yhat, 0.9 * city)
    for area in (1, 2):
        cells = out[SeriesKey(area, "THEFT")].yhat + out[SeriesKey(area, "BATTERY")].yhat
        np.testing.assert_allclose(cells, out[SeriesKey(area, "ALL")].yhat)
    for type_ in ("THEFT", "BATTERY"):
        cells = out[SeriesKey(1, type_)].yhat + out[SeriesKey(2, type_)].yhat
        np.testing.assert_allclose(cells, 0.9 * out[SeriesKey(None, type_)].yhat, rtol=1e-4)


def test_top_anchor_keeps_the_city_total_and_mean_anchor_meets_halfway() -> None:
    forecasts = _incoherent()
    np.testing.assert_allclose(reconcile(forecasts)[CITY].yhat, [110, 220])
    # types sum to 100 and 200: the mean anchor lands between them and the city's own forecast
    np.testing.assert_allclose(reconcile(forecasts, anchor="mean")[CITY].yhat, [105, 210])
    with pytest.raises(ValueError, match="anchor"):
        reconcile(forecasts, anchor="bottom")


def test_coherent_forecasts_come_back_unchanged_with_their_bands_scaled_alike() -> None:
    coherent = {
        CITY: _band(100), SeriesKey(None, "THEFT"): _band(60), SeriesKey(None, "BATTERY"): _band(40),
        SeriesKey(1, "ALL"): _band(100), SeriesKey(1, "THEFT"): _band(60), SeriesKey(1, "BATTERY"): _band(40),
    }
    out = reconcile(coherent)
    for key, band in coherent.items():
        np.testing.assert_allclose(out[key].yhat, band.yhat)
        np.testing.assert_allclose(out[key].lower, band.lower)
    scaled = reconcile({CITY: _band(200), SeriesKey(None, "THEFT"): _band(50), SeriesKey(None, "BATTERY"): _band(50)})
    theft = scaled[SeriesKey(None, "THEFT")]
    np.testing.assert_allclose([theft.yhat[0], theft.lower[0], theft.upper[0]], [100, 80, 125])


def test_series_without_a_parent_are_left_alone_and_nothing_is_negative() -> None:
    only_cells = {SeriesKey(3, "THEFT"): _band(5, 0), SeriesKey(4, "ASSAULT"): _band(0, 2)}
    out = reconcile(only_cells)
    for key, band in only_cells.items():
        np.testing.assert_allclose(out[key].yhat, band.yhat)
    assert reconcile({}) == {}
    full = reconcile(_incoherent(), unplaced_share={"ALL": 0.05, "THEFT": 0.1})
    assert all((b.yhat >= 0).all() and (b.lower >= 0).all() for b in full.values())


def test_ipf_matches_both_margins_of_a_feasible_matrix() -> None:
    cells = np.array([[1.0, 2.0], [3.0, 4.0]])[:, :, None]
    rows, cols = np.array([[4.0], [6.0]]), np.array([[5.0], [5.0]])
    fitted = ipf(cells, rows, cols)
    np.testing.assert_allclose(fitted.sum(axis=1), rows)
    np.testing.assert_allclose(fitted.sum(axis=0), cols, rtol=1e-5)


def test_only_forecasts_that_start_in_the_same_month_add_up() -> None:
    """Area x type cells whose data end in 2024-12 (forecast from 2025-01) beside totals that run
    to 2026-04 (forecast from 2026-05): reconciled apart, the cells never scaled to the totals."""
    late = {k: Band(b.yhat, b.lower, b.upper, "2026-05") for k, b in _incoherent().items() if k.primary_type == "ALL"}
    early = {k: Band(b.yhat, b.lower, b.upper, "2025-01") for k, b in _incoherent().items() if k.primary_type != "ALL"}
    out = reconcile({**late, **early}, unplaced_share=0.1)
    alone = reconcile(early, unplaced_share=0.1)
    for key in early:
        np.testing.assert_allclose(out[key].yhat, alone[key].yhat)
        assert out[key].start == "2025-01"
    np.testing.assert_allclose(out[SeriesKey(1, "ALL")].yhat + out[SeriesKey(2, "ALL")].yhat, out[CITY].yhat * 0.9)
    assert not np.allclose(out[SeriesKey(1, "THEFT")].yhat + out[SeriesKey(1, "BATTERY")].yhat, out[SeriesKey(1, "ALL")].yhat)
    with pytest.raises(ValueError, match="start in different months"):
        coherence_gaps(out, unplaced_share=0.1)
    assert coherence_gaps(by_start(out)["2026-05"], 0.1)["areas_to_city"] < 1e-6


def test_finer_forecasts_add_up_to_the_share_of_the_total_they_cover() -> None:
    """Three types that hold 40% of the city's reports (the others have no forecast) are not
    scaled up to every crime: they add up to 40% of the city's total, as do an area's cells."""
    forecasts = {CITY: _band(1000, 1100), SeriesKey(None, "THEFT"): _band(250, 260), SeriesKey(None, "BATTERY"): _band(100, 150),
                 SeriesKey(None, "ASSAULT"): _band(60, 70), SeriesKey(1, "ALL"): _band(500, 520), SeriesKey(2, "ALL"): _band(450, 480),
                 SeriesKey(1, "THEFT"): _band(120, 130), SeriesKey(2, "THEFT"): _band(110, 100)}
    coverage = {CITY: 0.4, SeriesKey(1, "ALL"): 0.25, SeriesKey(2, "ALL"): 0.2}
    out = reconcile(forecasts, unplaced_share=0.05, coverage=coverage)
    types = sum(out[SeriesKey(None, t)].yhat for t in ("THEFT", "BATTERY", "ASSAULT"))
    np.testing.assert_allclose(types, out[CITY].yhat * 0.4)
    np.testing.assert_allclose(out[CITY].yhat, forecasts[CITY].yhat)  # the top anchor stays
    np.testing.assert_allclose(out[SeriesKey(1, "THEFT")].yhat, out[SeriesKey(1, "ALL")].yhat * 0.25)
    np.testing.assert_allclose(out[SeriesKey(2, "THEFT")].yhat, out[SeriesKey(2, "ALL")].yhat * 0.2)
    assert coherence_gaps(out, 0.05, coverage)["types_to_city"] < 1e-6
    assert coherence_gaps(out, 0.05, coverage)["area_types_to_areas"] < 1e-6
    without = reconcile(forecasts, unplaced_share=0.05)  # what was done before: every crime put on three types
    np.testing.assert_allclose(sum(without[SeriesKey(None, t)].yhat for t in ("THEFT", "BATTERY", "ASSAULT")), forecasts[CITY].yhat)


def test_a_sparse_type_s_few_cells_are_not_scaled_up_to_the_whole_type() -> None:
    """STALKING: 40 reports a month in the city, of which the one area with a forecast holds 5%
    (the other areas are too sparse to model). Its cell adds up to 5% of the type, not to all
    of it; the area's THEFT is not squeezed to make room (measured on the city's 2016-11: one
    area's STALKING went from 0.5 to 12.7 a month, and the replay's live error rose 0.024)."""
    stalking, theft = SeriesKey(None, "STALKING"), SeriesKey(None, "THEFT")
    forecasts = {CITY: _band(270), theft: _band(200), stalking: _band(40),
                 SeriesKey(1, "ALL"): _band(150), SeriesKey(2, "ALL"): _band(120),
                 SeriesKey(1, "THEFT"): _band(100), SeriesKey(1, "STALKING"): _band(2), SeriesKey(2, "THEFT"): _band(100)}
    coverage = {CITY: 240 / 270, SeriesKey(1, "ALL"): 102 / 150, SeriesKey(2, "ALL"): 100 / 120, stalking: 0.05, theft: 1.0}
    out = reconcile(forecasts, coverage=coverage)
    assert out[SeriesKey(1, "STALKING")].yhat[0] == pytest.approx(2, rel=0.05)
    assert out[SeriesKey(1, "THEFT")].yhat[0] == pytest.approx(100, rel=0.05)
    assert coherence_gaps(out, 0.0, coverage)["area_types_to_areas"] < 1e-6
    without = reconcile(forecasts, coverage={k: v for k, v in coverage.items() if k not in (stalking, theft)})
    assert without[SeriesKey(1, "STALKING")].yhat[0] > 10  # what the service did: the cell stood for the whole type


def test_cells_with_no_recent_report_or_no_area_total_do_not_skew_their_type() -> None:
    """A type whose cells held none of its last 12 months (share 0) keeps its cells' own sizes
    (not all zero); a cell whose area has no total is left alone and is not in its type's margin."""
    stalking = SeriesKey(None, "STALKING")
    forecasts = {CITY: _band(270), SeriesKey(None, "THEFT"): _band(200), stalking: _band(40),
                 SeriesKey(1, "ALL"): _band(150), SeriesKey(2, "ALL"): _band(120),
                 SeriesKey(1, "THEFT"): _band(100), SeriesKey(1, "STALKING"): _band(0.5), SeriesKey(2, "THEFT"): _band(100),
                 SeriesKey(3, "STALKING"): _band(1.5)}
    coverage = {CITY: 240 / 270, SeriesKey(1, "ALL"): 100.5 / 150, SeriesKey(2, "ALL"): 100 / 120, stalking: 0.0}
    out = reconcile(forecasts, coverage=coverage)
    assert out[SeriesKey(1, "STALKING")].yhat[0] == pytest.approx(0.5, rel=0.05)
    assert out[SeriesKey(1, "STALKING")].upper[0] > out[SeriesKey(1, "STALKING")].yhat[0] > 0
    assert out[SeriesKey(3, "STALKING")] is forecasts[SeriesKey(3, "STALKING")]
