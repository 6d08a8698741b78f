"""Plans: which tasks of which stages still have to run. Shared by every executor."""

from __future__ import annotations

from dataclasses import dataclass

from cellbench.config import Config
from cellbench.paths import ResultsPaths
from cellbench.stages import STAGES, list_tasks, task_hash, task_outputs
from cellbench.status import is_done

ALL = "all"


@dataclass(frozen=True)
class StagePlan:
    """The tasks of one stage, and those of them that are not done yet (or all, if forced)."""

    stage: str
    tasks: list[str]
    todo: list[str]

    @property
    def n_done(self) -> int:
        """Tasks that will be skipped because they are done."""
        return len(self.tasks) - len(self.todo)


def stages_for(stage: str) -> list[str]:
    """The stages that `--stage` names: one, or every stage in order for ``all``."""
    return list(STAGES) if stage == ALL else [stage]


def plan(config: Config, stage: str, force: bool = False) -> list[StagePlan]:
    """Plan the stages named by `stage` from the config and the status files alone."""
    paths = ResultsPaths(config.results_root)
    plans = []
    for name in stages_for(stage):
        tasks = list_tasks(config, name)
        todo = [
            task
            for task in tasks
            if force
            or not is_done(
                paths.status_file(name, task),
                task_hash(config, name, task),
                task_outputs(config, name, task),
            )
        ]
        plans.append(StagePlan(name, tasks, todo))
    return plans


def describe(plans: list[StagePlan]) -> str:
    """One line per stage: task count, how many run, how many are done."""
    width = max(len(p.stage) for p in plans)
    return "\n".join(
        f"  {p.stage:<{width}}  {len(p.tasks):>4} task(s): "
        f"{len(p.todo):>4} to run, {p.n_done:>4} done"
        for p in plans
    )
