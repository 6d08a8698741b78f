from cellbench.execution.slurm_state import UNKNOWN, _expand, query_states


def test_array_ranges_expand():
    assert _expand("12_[0-2,5%2]") == ["12_0", "12_1", "12_2", "12_5"]
    assert _expand("12_[7]") == ["12_7"]
    assert _expand("12_3") == ["12_3"]
    assert _expand("12") == ["12"]


def test_unknown_jobs_and_missing_commands_do_not_hang(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # no sacct, squeue or scontrol at all
    answer = query_states(["99999_0", "99998"], timeout_s=2)
    assert answer.states == {"99999_0": UNKNOWN, "99998": UNKNOWN}
    assert "sacct unavailable" in answer.source
