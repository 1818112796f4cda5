"""/api/play/params: the ratio as text, the tutorials' rows as presets, and the HD row's erratum."""
from __future__ import annotations

from cnnlab.lab.explain import conv_parameters, dense_parameters


def test_ratio_is_written_out(client):
    body = client.post("/api/play/params", json={"channels": 3, "height": 224, "width": 224, "hidden": 1000,
                                                 "kernel": 3, "filters": 64}).json()
    assert body["ratio"] == 150_529_000 / 1_792
    assert body["ratio_text"] == "84,001×"
    assert body["conv_formula"].endswith("= 1,792") and body["dense_formula"].endswith("= 150,529,000")


def test_presets_are_the_tutorials_rows(client):
    presets = client.post("/api/play/params", json={}).json()["presets"]
    pairs = [(p["dense"], p["conv"]) for p in presets]
    for pair in [(78_500, None), (100_480, 160), (150_529_000, 1_792), (6_291_968, 4_864), (785_000, None),
                 (3_073_000, None)]:
        assert pair in pairs
    for p in presets:  # every preset is a setting of the controls that gives its own counts
        assert p["dense"] == dense_parameters(p["channels"] * p["height"] * p["width"], p["hidden"])
        if p["conv"] is not None:
            assert p["conv"] == conv_parameters(p["channels"], p["filters"], p["kernel"])


def test_hd_row_and_its_erratum(client):
    body = client.post("/api/play/params", json={}).json()
    hd = next(p for p in body["presets"] if p["width"] == 1920)
    assert (hd["channels"], hd["height"], hd["hidden"]) == (3, 1080, 1000)
    assert hd["dense"] == 3 * 1920 * 1080 * 1000 + 1000 == 6_220_801_000
    assert hd["conv"] == 1_792  # the same filters as on a 224x224 image
    [erratum] = body["errata"]
    assert erratum["tutorial"] == 6_221_801_000 and erratum["cnnlab"] == 6_220_801_000
    assert "6,221,801,000" in erratum["text"] and "6,220,801,000" in erratum["text"]
    same = client.post("/api/play/params", json={k: hd[k] for k in ("channels", "height", "width", "hidden",
                                                                     "kernel", "filters")}).json()
    assert same["dense"] == hd["dense"] and same["ratio_text"] == hd["ratio_text"]


def test_the_chart_axis_has_round_ticks_up_to_the_longest_bar(client):
    body = client.post("/api/play/params", json={}).json()
    axis = body["axis"]
    assert axis["max"] == 6_220_801_000  # the HD row's dense layer is the longest bar
    assert [t["value"] for t in axis["log"]] == [10**k for k in range(10)]
    assert [t["label"] for t in axis["log"]] == ["1", "10", "100", "1k", "10k", "100k", "1M", "10M", "100M", "1B"]
    assert [t["value"] for t in axis["linear"]] == [k * 10**9 for k in range(7)]
    assert [t["label"] for t in axis["linear"]][-1] == "6B"
    big = client.post("/api/play/params", json={"height": 4096, "width": 4096, "channels": 4,
                                                 "hidden": 100_000}).json()["axis"]
    assert big["max"] == 4 * 4096 * 4096 * 100_000 + 100_000  # the setting's own bar, when it is the longest
    assert big["log"][-1]["label"] == "1000B" and big["linear"][1]["label"] == "1000B"
