"""IPF RFI annotations: the real fixture's noise and burst reports parsed into tables whose values equal the XML's
(read here with ElementTree), nested time-/frequency-domain reports flattened, and the side-by-side with our own
per-line detection counting the lines of each burst as a plain computation does."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from sarpipe.errors import InputError
from sarpipe.io.s1_rfi_annotation import (
    comparison_markdown,
    ipf_beside_detection,
    read_rfi_annotation,
    rfi_tables,
    snake,
)

FIXTURE = next((Path(__file__).parent / "data" / "s1_rfi").glob("rfi-*.xml"))

# element names and values of a real IW SLC burst report (s1-reader tests/data/rfi_info_list.json, first entry)
NESTED = """<rfi><adsHeader><missionId>S1A</missionId><swath>IW2</swath></adsHeader>
<rfiMitigationApplied>TimeAndFrequency</rfiMitigationApplied>
<rfiDetectionFromNoiseReportList count="0"/>
<rfiBurstReportList count="1"><rfiBurstReport><swath>IW2</swath>
<azimuthTime>2023-01-08T13:52:51.383925</azimuthTime><inBandOutBandPowerRatio>1.147391e+01</inBandOutBandPowerRatio>
<timeDomainRfiReport><percentageAffectedLines>3.294574e+00</percentageAffectedLines>
<avgPercentageAffectedSamples>2.442056e-02</avgPercentageAffectedSamples>
<maxPercentageAffectedSamples>1.737835e-01</maxPercentageAffectedSamples></timeDomainRfiReport>
<frequencyDomainRfiBurstReport><numSubBlocks>3</numSubBlocks><subBlockSize>583</subBlockSize>
<isolatedRfiReport><percentageAffectedLines>2.305274e+01</percentageAffectedLines>
<maxPercentageAffectedBW>1.545041e+00</maxPercentageAffectedBW></isolatedRfiReport>
<percentageBlocksPersistentRfi>0.000000e+00</percentageBlocksPersistentRfi>
<maxPercentageBWAffectedPersistentRfi>0.000000e+00</maxPercentageBWAffectedPersistentRfi>
</frequencyDomainRfiBurstReport></rfiBurstReport></rfiBurstReportList></rfi>"""


def test_real_rfi_annotation_tables_equal_the_xml():
    root = ET.parse(FIXTURE).getroot()
    tables = rfi_tables(read_rfi_annotation(FIXTURE))
    noise, burst = tables["noise"], tables["burst"]
    xml_noise = root.findall("rfiDetectionFromNoiseReportList/rfiDetectionFromNoiseReport")
    xml_burst = root.findall("rfiBurstReportList/rfiBurstReport")
    assert (
        noise.sizes["noise_report"] == len(xml_noise) == int(root.find("rfiDetectionFromNoiseReportList").get("count"))
    )
    assert burst.sizes["burst_report"] == len(xml_burst) == 30
    for k, e in enumerate(xml_noise):
        assert noise["swath"].values[k] == e.findtext("swath")
        assert noise["noise_sensing_time"].values[k] == np.datetime64(e.findtext("noiseSensingTime"), "ns")
        assert bool(noise["rfi_detected"].values[k]) == (e.findtext("rfiDetected") == "true")
        assert noise["max_kl_divergence"].values[k] == float(e.findtext("maxKLDivergence"))
        assert noise["max_fisher_z"].values[k] == float(e.findtext("maxFisherZ"))
        assert noise["max_rfi_psd"].values[k] == float(e.findtext("maxRfiPsd"))
    for k, e in enumerate(xml_burst):
        assert burst["azimuth_time"].values[k] == np.datetime64(e.findtext("azimuthTime"), "ns")
        assert burst["in_band_out_band_power_ratio"].values[k] == float(e.findtext("inBandOutBandPowerRatio"))
    assert int(noise["rfi_detected"].sum()) == 1 and noise["swath"].values[noise["rfi_detected"].values][0] == "IW3"
    assert noise.attrs["rfi_mitigation_applied"] == root.findtext("rfiMitigationApplied") == "None"
    assert noise.attrs["mission_id"] == "S1B" and noise.attrs["image_number"] == "001"


def test_nested_time_and_frequency_reports_are_flattened(tmp_path):
    path = tmp_path / "rfi-s1a-iw2-slc-vv-x.xml"
    path.write_text(NESTED)
    ann = read_rfi_annotation(path)
    assert ann.mitigation_applied == "TimeAndFrequency" and ann.noise_reports == []
    r = ann.burst_reports[0]
    assert r["time_domain_rfi_report.percentage_affected_lines"] == 3.294574
    assert r["frequency_domain_rfi_burst_report.isolated_rfi_report.max_percentage_affected_bw"] == 1.545041
    assert r["frequency_domain_rfi_burst_report.num_sub_blocks"] == 3
    table = rfi_tables(ann)["burst"]
    assert table["time_domain_rfi_report__max_percentage_affected_samples"].values[0] == 0.1737835
    assert snake("maxPercentageBWAffectedPersistentRfi") == "max_percentage_bw_affected_persistent_rfi"
    assert snake("maxKLDivergence") == "max_kl_divergence"


def test_ipf_reports_beside_our_detection():
    ann = read_rfi_annotation(FIXTURE)
    # an image of IW3 from 05:11:40 for 10 s at 100 lines/s; we flag lines 100..149 (05:11:41.00..41.49)
    az = np.arange(1000) / 100.0
    flagged = np.zeros(az.size, bool)
    flagged[100:150] = True
    rows = ipf_beside_detection(ann, az, "2021-12-23T05:11:40Z", flagged, swath="IW3")
    root = ET.parse(FIXTURE).getroot()
    starts = sorted(
        (np.datetime64(e.findtext("azimuthTime"), "ns") - np.datetime64("2021-12-23T05:11:40", "ns"))
        / np.timedelta64(1, "s")
        for e in root.findall("rfiBurstReportList/rfiBurstReport")
        if e.findtext("swath") == "IW3"
    )
    stops = starts[1:] + [starts[-1] + float(np.median(np.diff(starts)))]
    expected = [(a, b) for a, b in zip(starts, stops) if ((az >= a) & (az < b)).any()]
    np.testing.assert_allclose([(r["burst_start_s"], r["burst_stop_s"]) for r in rows], expected, atol=1e-9)
    for r, (a, b) in zip(rows, expected):
        inside = (az >= a) & (az < b)
        assert r["lines"] == inside.sum() and r["flagged_lines"] == flagged[inside].sum()
    assert sum(r["flagged_lines"] for r in rows) == 50
    # the IPF's noise report flagging RFI (IW3, 05:11:45.016) is the nearest of the burst starting at 05:11:43.858
    detected = [r for r in rows if r["ipf_rfi_detected_noise"]]
    assert len(detected) == 1 and detected[0]["burst_start_s"] == pytest.approx(3.85765)
    assert "IW3" in comparison_markdown(rows) and "n/a" in comparison_markdown(rows)
    with pytest.raises(InputError, match="flagged_lines"):
        ipf_beside_detection(ann, az, "2021-12-23T05:11:40Z", flagged[:10])


def test_not_an_rfi_annotation(tmp_path):
    bad = tmp_path / "rfi-x.xml"
    bad.write_text("<product/>")
    with pytest.raises(InputError, match="expected 'rfi'"):
        read_rfi_annotation(bad)
    bad.write_text("<rfi")
    with pytest.raises(InputError, match="not a readable"):
        read_rfi_annotation(bad)
