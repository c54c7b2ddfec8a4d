"""Benchmarks write one record format (benchmarks/record.py); the demo benchmark times the main job."""
import json

from benchmarks import demo
from benchmarks.record import write_record

RECORD_KEYS = {"kind", "date", "commit", "torch", "device", "command", "config", "figures"}


def test_a_record_names_the_code_the_machine_and_the_command(tmp_path):
    record = write_record(tmp_path / "r.json", "demo", {"x": 1.5}, "python -m benchmarks.demo", {"repeat": 1})
    assert set(record) == RECORD_KEYS and json.loads((tmp_path / "r.json").read_text()) == record
    write_record(tmp_path / "r.jsonl", "demo", {"x": 1}, "a")
    write_record(tmp_path / "r.jsonl", "demo", {"x": 2}, "b")
    lines = [json.loads(line) for line in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert [r["figures"]["x"] for r in lines] == [1, 2]  # a .jsonl file gets one record per line, appended


def test_the_demo_benchmark_times_act_train_and_records_its_figures(tmp_path):
    out = tmp_path / "demo.json"
    figures = demo.main(["--repeat", "1", "--json", str(out), "optim.epochs=2", "optim.warmup_epochs=1",
                         "data.train_limit=200", "data.test_limit=50"])
    record = json.loads(out.read_text())
    assert set(record) == RECORD_KEYS and record["kind"] == "demo" and record["figures"] == figures
    assert figures["epochs"] == 2 and len(figures["wall_seconds"]) == 1 and figures["wall_seconds"][0] > 0
    assert 0 <= figures["rtm_last10_mean"] <= 100 and figures["pipeline"] == "tensor"
    assert record["config"]["overrides"][0] == "optim.epochs=2"
