"""benchmarks/packs.py, packed_epochs: the same K runs one after another, as K processes at once
and as one pack of K, run on the CPU in smoke mode; each figure reported the moment it is
measured (so a time-out keeps what was measured); the command writes a record only where --out says."""
import json
from pathlib import Path

import pytest

from act.run.folder import RunFolder
from benchmarks import packs


def test_packed_epochs_in_smoke_mode_gives_the_three_figures_and_reports_each_as_it_ends(tmp_path):
    s = packs.Setting(device="cpu", train=512, test=256, model="tinycnn", smoke=True, scratch=str(tmp_path))
    reports = []
    result = packs.packed_epochs(s, lambda so_far: reports.append(json.loads(json.dumps(so_far))))
    assert [e["k"] for e in result["packs"]] == [1, 2]
    alone = result["alone"]["robust_epoch_s"]
    assert alone > 0 and result["train"] == packs.SMOKE[0]
    for e in result["packs"]:
        assert e["one_after_another_s"] == e["k"] * alone
        assert all(e[key] > 0 for key in ("processes_s", "processes_wall_s", "pack_s", "pack_wall_s"))
    # alone; then for each K the processes, then the pack: reported as each ended
    assert len(reports) == 5 and reports[-1] == json.loads(json.dumps(result))
    assert reports[0]["alone"] and reports[0]["packs"] == []
    assert [sorted(k for k in ("processes_s", "pack_s") if k in r["packs"][-1]) for r in reports[1:]] == \
           [["processes_s"], ["pack_s", "processes_s"]] * 2
    [runs] = tmp_path.glob("packs-*")
    summary = RunFolder(runs / "pack2-1").summary()  # every epoch trained in the pack
    assert summary["packed"] == {"k": 2, "members": ["pack2-0", "pack2-1"], "epochs": [0, summary["epochs"] - 1]}
    assert "packed" not in RunFolder(runs / "procs2-1").summary()  # a process of its own: an ordinary run
    assert [len(RunFolder(runs / f"procs2-{i}").metrics()) for i in (0, 1)] == [3, 3]


def fake_packed_epochs(s, report, packs_=None):
    result = {"alone": {"robust_epoch_s": 1.0}, "packs": [], "train": s.train, "model": s.model, "device": s.device,
              "batch_size": 128}
    report(result)
    result["packs"].append({"k": 1, "one_after_another_s": 1.0, "processes_s": 1.5})
    report(result)
    return result


def test_the_command_writes_a_record_only_where_out_says(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(packs, "packed_epochs", fake_packed_epochs)
    results = Path(packs.__file__).parent / "results"
    before = sorted(results.iterdir()) if results.exists() else []
    packs.main(["--smoke"])
    assert (sorted(results.iterdir()) if results.exists() else []) == before
    assert "written to" not in capsys.readouterr().out
    packs.main(["--smoke", "--out", str(tmp_path)])
    [record] = tmp_path.glob("packs-*.json")
    figures = json.loads(record.read_text())["figures"]
    assert figures["packs"] == [{"k": 1, "one_after_another_s": 1.0, "processes_s": 1.5}]
    out = capsys.readouterr().out
    assert f"written to {record}" in out and "  1               1.00         1.50          -" in out


def test_the_command_refuses_to_measure_without_a_gpu(capsys):
    with pytest.raises(SystemExit) as exit_info:
        packs.main([])
    assert exit_info.value.code == 2 and "no CUDA device here" in capsys.readouterr().err
