"""Plans: which tasks of which stages have to run. Shared by every executor.

A task is planned when it is not done, or when a task it reads from a stage upstream of it
(`Stage.upstream`) is planned: its input is about to change. Plate stages depend plate by
plate; train, evaluate and aggregate depend on the whole of each stage they read (evaluate on
the same model and seed of train).
Each task still checks at run time whether it is done, so planning too much costs little.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cellbench.config import Config
from cellbench.stages import (
    MODEL_SEED,
    PLATE_STAGES,
    STAGES,
    list_tasks,
    model_task,
    reads_crop_stores,
    why_task_not_done,
)
from cellbench.stages import stage as stage_row

ALL = "all"


@dataclass(frozen=True)
class StagePlan:
    """The tasks of one stage, and those of them that will run."""

    stage: str
    tasks: list[str]
    todo: list[str]
    reasons: dict[str, str] = field(default_factory=dict)  # why a task that ran runs again

    @property
    def n_done(self) -> int:
        """Tasks that will be skipped because they are done."""
        return len(self.tasks) - len(self.todo)


def stages_for(stage: str, config: Config | None = None) -> list[str]:
    """The stages that `--stage` names: all of them, or one and those it reads from.

    A stage's upstream stages come from the stage table. Prerequisites with nothing to do are
    planned with no task and cost nothing. Models that read no crops do not wait for the crop
    stage.
    """
    if stage == ALL:
        return list(STAGES)
    needed = [s for s in stage_row(stage).upstream if s != "crop"]
    if config is None or reads_crop_stores(config, stage):
        needed.append("crop")
    return [s for s in STAGES if s in needed or s == stage]


def plan(
    config: Config,
    stage: str,
    force: bool = False,
    only: dict[str, set[str]] | None = None,
) -> list[StagePlan]:
    """Plan the stages named by `stage` from the config and the status files alone.

    Parameters
    ----------
    config : Config
    stage : str
        A stage name or ``all``.
    force : bool
        Plan every task, done or not.
    only : dict of {stage: set of tasks}, optional
        Plan just these tasks (and what depends on them) instead of every task not done:
        how ``--retry-failed`` resubmits failed tasks only.
    """
    plans: list[StagePlan] = []
    for name in stages_for(stage, config):
        tasks = list_tasks(config, name)
        reasons: dict[str, str] = {}
        if force and (name == stage or stage == ALL):
            todo = set(tasks)
        elif only is not None and (name == stage or stage == ALL):
            todo = set(only.get(name, ())) & set(tasks)
        else:  # every task not done (prerequisites of a single stage too)
            reasons = _not_done(config, name, tasks)
            todo = set(reasons)
        for upstream in plans:  # the stages it reads (a stage without tasks passes nothing)
            if upstream.stage in stage_row(name).upstream:
                todo |= _downstream_of(upstream, name, tasks, config)
        shown = {t: why for t, why in reasons.items() if why != NEVER_RAN}
        plans.append(StagePlan(name, tasks, [t for t in tasks if t in todo], shown))
    return plans


NEVER_RAN = "never ran"


def _not_done(config: Config, stage: str, tasks: list[str]) -> dict[str, str]:
    """Why each task of `stage` that is not done has to run."""
    reasons = {}
    for task in tasks:
        why = why_task_not_done(config, stage, task)
        if why is not None:
            reasons[task] = why
    return reasons


def _downstream_of(upstream: StagePlan, stage: str, tasks: list[str], config: Config) -> set[str]:
    """Tasks of `stage` whose input the planned tasks of `upstream` will rewrite."""
    if not upstream.todo:
        return set()
    if stage in PLATE_STAGES and upstream.stage in PLATE_STAGES:
        return set(upstream.todo) & set(tasks)
    if stage_row(stage).unit == MODEL_SEED and stage_row(upstream.stage).unit == MODEL_SEED:
        retrained = set(upstream.todo)
        for model in config.models:  # models on embeddings follow their embedding model
            source = getattr(model, "embedding_model", None)
            for seed in config.seeds:
                if source and model_task(source, seed) in retrained:
                    retrained.add(model_task(model.name, seed))
        return retrained & set(tasks)
    return set(tasks)


def describe(plans: list[StagePlan]) -> str:
    """One line per stage: task count, how many run, how many are done."""
    width = max(len(p.stage) for p in plans)
    lines = []
    for p in plans:
        lines.append(
            f"  {p.stage:<{width}}  {len(p.tasks):>4} task(s): "
            f"{len(p.todo):>4} to run, {p.n_done:>4} done"
        )
        redone = [(t, why) for t, why in p.reasons.items() if t in p.todo]
        for task, why in redone[:_SHOWN_REASONS]:
            lines.append(f"      {p.stage}/{task}: runs again: {why}")
        if len(redone) > _SHOWN_REASONS:
            lines.append(f"      ... and {len(redone) - _SHOWN_REASONS} more")
    return "\n".join(lines)


_SHOWN_REASONS = 10
