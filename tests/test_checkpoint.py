"""Checkpoint files: checksum, weights-only loading, RNG states, data fingerprint, atomic saves."""
import errno
import io
import os
import pickle
import random

import numpy as np
import pytest
import torch

from act.errors import ActError
from act.run import checkpoint
from support.datafactory import array_source


def a_state():
    """A run's state after its first epoch, every entry save_run writes."""
    return {"epoch": 0, "rtm": {"w": torch.arange(6.0).reshape(2, 3)}, "ntm": {}, "rtm_opt": {}, "ntm_opt": {},
            "scaler": None, "bank": {"count": torch.zeros(4), "ema": torch.zeros(4, 2)}, "world_size": 1,
            "history": [{"epoch": 0, "lr": 0.02}], "fingerprint": {"train_size": 5, "labels": "ab"},
            "config": '{"optim.lr": 0.02}', "threads": 1, "rng": checkpoint.rng_state()}


def flip_byte(path, offset):
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def test_a_checkpoint_round_trips_through_a_weights_only_load(tmp_path):
    path = tmp_path / "checkpoint.pt"
    state = a_state()
    checkpoint.save(path, state)
    loaded = checkpoint.load(path)
    assert loaded["epoch"] == 0 and loaded["history"] == state["history"]
    assert torch.equal(loaded["rtm"]["w"], state["rtm"]["w"])
    assert loaded["fingerprint"] == state["fingerprint"]


def test_the_rng_states_are_restored_exactly():
    torch.manual_seed(1), np.random.seed(2), random.seed(3)
    np.random.normal()  # leaves a cached gaussian in numpy's state
    buffer = io.BytesIO()
    torch.save(checkpoint.rng_state(), buffer)
    expected = (torch.rand(3), np.random.rand(3), np.random.normal(), random.random())
    buffer.seek(0)
    checkpoint.set_rng_state(torch.load(buffer, weights_only=True))
    again = (torch.rand(3), np.random.rand(3), np.random.normal(), random.random())
    assert torch.equal(expected[0], again[0]) and np.array_equal(expected[1], again[1])
    assert expected[2:] == again[2:]


def test_a_bit_flipped_checkpoint_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "checkpoint.pt"
    checkpoint.save(path, a_state())
    flip_byte(path, len(path.read_bytes()) // 2)
    with pytest.raises(ActError, match=f"checkpoint {path} is corrupt"):
        checkpoint.load(path)


def test_a_truncated_checkpoint_is_refused(tmp_path):
    path = tmp_path / "checkpoint.pt"
    checkpoint.save(path, a_state())
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(ActError, match="is corrupt"):
        checkpoint.load(path)


class RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_checkpoint_whose_pickle_would_run_code_is_refused(tmp_path):
    """Even with a valid checksum (anyone can compute one), nothing but tensors and plain values loads."""
    marker = tmp_path / "ran"
    buffer = io.BytesIO()
    torch.save({"epoch": 0, "evil": RunsCode(str(marker))}, buffer)
    payload = buffer.getvalue()
    import hashlib

    path = tmp_path / "checkpoint.pt"
    path.write_bytes(checkpoint.MAGIC + hashlib.sha256(payload).hexdigest().encode() + b"\n" + payload)
    with pytest.raises(ActError, match="could run code"):
        checkpoint.load(path)
    assert not marker.exists()


def test_a_plain_torch_file_is_not_taken_for_a_checkpoint(tmp_path):
    path = tmp_path / "checkpoint.pt"
    torch.save({"epoch": 0}, path)
    with pytest.raises(ActError, match="not an act checkpoint"):
        checkpoint.load(path)


def test_a_failed_save_keeps_the_old_checkpoint_and_leaves_no_temp_file(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.pt"
    checkpoint.save(path, a_state())
    before = path.read_bytes()

    def disk_full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(ActError, match=f"cannot write {path} \\(No space left on device\\)") as error:
        checkpoint.save(path, {**a_state(), "epoch": 4})
    assert "\n" not in str(error.value)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt"]


def test_the_fingerprint_follows_labels_pixels_and_files():
    source = array_source(n=30, n_test=10)
    noisy = source.train.labels.copy()
    base = checkpoint.fingerprint(source, noisy)
    assert base == checkpoint.fingerprint(source, noisy)
    flipped = noisy.copy()
    flipped[0] = (flipped[0] + 1) % 10
    assert checkpoint.fingerprint(source, flipped)["labels"] != base["labels"]
    source.test.images[0, 0, 0, 0] ^= 1
    assert checkpoint.fingerprint(source, noisy)["data"] != base["data"]
    assert pickle.loads(pickle.dumps(base)) == base  # plain values: a weights-only load takes them


def test_the_fingerprint_hashes_file_names_that_are_not_utf8():
    from act.datasets.base import Source, Split

    def files_named(name):
        split = Split(labels=np.zeros(2, dtype=np.int64), files=["a/0.png", os.fsdecode(name)])
        return Source(name="t", train=split, test=split, classes=["0"])

    noisy = np.zeros(2, dtype=np.int64)
    latin1 = checkpoint.fingerprint(files_named(b"a/caf\xe9.png"), noisy)
    assert latin1 == checkpoint.fingerprint(files_named(b"a/caf\xe9.png"), noisy)
    assert latin1["data"] != checkpoint.fingerprint(files_named(b"a/caf\xc3\xa9.png"), noisy)["data"]


@pytest.mark.parametrize("change,why", [
    (lambda s: s.pop("rng"), "'rng' is missing"),
    (lambda s: s.update(history={"epoch": 0}), "'history' is a mapping, not a list"),
    (lambda s: s.update(epoch="3"), "'epoch' is a string, not an integer"),
    (lambda s: s.update(epoch=True), "'epoch' is true or false, not an integer"),
    (lambda s: s["rng"]["numpy"].update(pos="x"), "'rng.numpy.pos' is a string, not an integer"),
    (lambda s: s["history"].append(7), "'history[1]' is an integer, not a mapping"),
    (lambda s: s.update(epoch=5), "'history' holds 1 epochs, 'epoch' says 6"),
], ids=["no rng", "history a dict", "epoch text", "epoch bool", "rng entry", "history item", "history short"])
def test_a_checkpoint_with_a_valid_checksum_but_entries_missing_or_of_another_type_is_one_line(tmp_path, change, why):
    path = tmp_path / "checkpoint.pt"
    state = a_state()
    change(state)
    checkpoint.save(path, state)
    with pytest.raises(ActError) as info:
        checkpoint.load(path)
    assert str(info.value) == (f"checkpoint {path} does not hold the state this act writes ({why}); "
                               f"the run cannot be resumed from it")

