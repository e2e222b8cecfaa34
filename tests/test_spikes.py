import json

from train.spikes import find_spikes, main


def _rows(at=None, n=200):
    """n logged steps of steady losses; at={step: {key: value}} changes some."""
    at = at or {}
    rows = []
    for step in range(1, n + 1):
        row = {"step": step, "recon": 100.0 + step % 7, "recon_ref": 300.0 + step % 5,
               "swap": 50.0, "neutral_cycle": 40.0 + step % 3, "transfer": 60.0}
        rows.append(row | at.get(step, {}))
    return rows


def test_a_spike_is_counted_once_with_the_cycles_jump_before_it():
    rows = _rows({149: {"neutral_cycle": 4100.0}, 150: {"recon": 350.0}, 151: {"recon": 330.0}})
    (spike,) = find_spikes(rows)
    assert (spike.step, spike.term) == (150, "recon")
    assert 3.0 < spike.ratio < 3.6
    assert 99 < spike.cycle_before < 101  # 4100 against a median of 41


def test_steady_losses_and_the_first_window_give_no_spikes():
    assert find_spikes(_rows()) == []
    assert find_spikes(_rows({50: {"recon": 1000.0}})) == []  # fewer than 100 steps before it
    assert len(find_spikes(_rows({50: {"recon": 1000.0}}), window=20)) == 1


def test_the_command_reads_run_folders(tmp_path, capsys):
    rows = _rows({120: {"recon_ref": 900.0}, 180: {"recon": 500.0}})
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main([str(tmp_path), "--until", "150"]) == 0
    out = capsys.readouterr().out
    assert "1 spikes in 150 steps" in out and "step    120  recon_ref" in out
