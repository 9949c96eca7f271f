"""``imovsp models promote`` and ``rollback``: CURRENT moves only to models that load and
value, every change is in HISTORY, and rolling back goes to the version current before."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from imovsp import artifact, rollout
from imovsp.artifact import ArtifactError
from imovsp.cli import cli
from model_versions import A, B, C, corrupt, incompatible, models_with


@pytest.fixture
def models(tmp_path: Path, models_dir: Path) -> Path:
    return models_with(tmp_path, models_dir, A, B, C)


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["models", *args])
    return result.exit_code, result.stdout, result.stderr


def test_promote_makes_the_version_current_and_records_it(models: Path) -> None:
    code, out, err = run("promote", B, "--models-dir", str(models))
    assert code == 0, err
    assert out == f"current model: {B} (was {A})\n"
    assert "SIGHUP or POST /admin/reload" in err
    assert artifact.current_version(models) == B
    last = artifact.history(models)[-1]
    assert (last["action"], last["version"], last["previous"]) == ("promote", B, A)


def test_rollback_goes_back_one_version_at_a_time(models: Path) -> None:
    rollout.promote(models, B)
    rollout.promote(models, C)
    assert rollout.lineage(models) == [A, B, C]
    code, out, _ = run("rollback", "--models-dir", str(models))
    assert code == 0
    assert out == f"current model: {B} (was {C})\n"
    assert rollout.rollback(models) == rollout.Change("rollback", A, B)
    assert artifact.current_version(models) == A
    # Nothing was current before A: refused, CURRENT unchanged.
    code, _, err = run("rollback", "--models-dir", str(models))
    assert code == 2
    assert err == (
        f"Error: refused: nothing to roll back to in {models}: no version was current before {A}\n"
    )
    assert artifact.current_version(models) == A


def test_a_promote_after_a_rollback_is_rolled_back_to_the_rolled_back_version(
    models: Path,
) -> None:
    rollout.promote(models, B)
    rollout.rollback(models)  # back to A
    rollout.promote(models, C)
    assert rollout.rollback(models).version == A
    assert [e["action"] for e in artifact.history(models)] == [
        "save",
        "promote",
        "rollback",
        "promote",
        "rollback",
    ]


def test_rollback_follows_versions_made_current_by_training(models: Path) -> None:
    # `imovsp train` makes its model current through artifact.save: recorded as "save".
    artifact.set_current(models, C, action="save")
    assert rollout.rollback(models) == rollout.Change("rollback", A, C)


def test_rollback_handles_a_current_pointer_written_without_history(models: Path) -> None:
    (models / artifact.HISTORY).unlink()
    (models / artifact.CURRENT).write_text(B + "\n")
    code, _, err = run("rollback", "--models-dir", str(models))
    assert code == 2
    assert f"no version was current before {B}" in err
    rollout.promote(models, C)  # the history now knows B came before
    assert rollout.rollback(models).version == B


@pytest.mark.parametrize(
    "spoil", [corrupt, incompatible], ids=["checksum mismatch", "older artifact format"]
)
def test_promote_refuses_an_unusable_model_with_exit_2_and_the_reason(
    models: Path, spoil: object
) -> None:
    assert callable(spoil)
    reason = spoil(models / B)
    code, out, err = run("promote", B, "--models-dir", str(models))
    assert code == 2
    assert out == ""
    assert err.startswith("Error: refused: ")
    assert reason in err
    assert len(err.strip().splitlines()) == 1
    assert artifact.current_version(models) == A
    assert [e["action"] for e in artifact.history(models)] == ["save"]


def test_rollback_refuses_a_previous_version_that_no_longer_loads(models: Path) -> None:
    rollout.promote(models, B)
    reason = corrupt(models / A)
    code, _, err = run("rollback", "--models-dir", str(models))
    assert code == 2
    assert reason in err
    assert artifact.current_version(models) == B


def test_promote_an_unknown_version_names_the_known_ones(models: Path) -> None:
    code, _, err = run("promote", "../elsewhere", "--models-dir", str(models))
    assert code == 2
    assert err == (
        f"Error: refused: no model version '../elsewhere' in {models} (latest: {A}, {B}, {C})\n"
    )


def test_promoting_the_current_version_changes_nothing(models: Path) -> None:
    code, out, _ = run("promote", A, "--models-dir", str(models))
    assert code == 0
    assert out == f"{A} is already the current model: nothing changed\n"
    assert len(artifact.history(models)) == 1


def test_a_change_decided_on_a_stale_current_version_is_refused(models: Path) -> None:
    with pytest.raises(ArtifactError, match=f"changed meanwhile \\(now {A}, was {B}\\)"):
        artifact.set_current(models, C, expected=B)
    assert artifact.current_version(models) == A


def test_pointer_and_history_are_written_whole(models: Path) -> None:
    rollout.promote(models, B)
    rollout.rollback(models)
    assert (models / artifact.CURRENT).read_text() == A + "\n"
    lines = (models / artifact.HISTORY).read_text().splitlines()
    assert [json.loads(line)["version"] for line in lines] == [A, B, A]
    assert not [p.name for p in models.iterdir() if p.name.startswith(".CURRENT")]


def test_history_lists_every_change(models: Path) -> None:
    rollout.promote(models, B)
    code, out, _ = run("history", "--models-dir", str(models))
    assert code == 0
    rows = out.splitlines()
    assert len(rows) == 2
    assert rows[1].split()[1:4] == ["promote", B, "(was"]


def test_group_option_still_lists_versions(models: Path) -> None:
    code, out, _ = run("--models-dir", str(models))
    assert code == 0
    assert f"* {A}" in out
    assert f"  {B}" in out
