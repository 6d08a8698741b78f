"""The evaluate and report sections: the analyses beyond each model's own scores.

MMD between groups of embedded cells (``evaluate.mmd``), KL between two classifiers'
predictions, parameter sweeps, the embedding and feature figures, and the published numbers
set beside ours (``report``).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from cellbench.config.base import StrictModel
from cellbench.config.model_base import ModelName


class KLPair(StrictModel):
    """Two classifiers of the same cells whose predicted class distributions are compared.

    The KL study: a model trained on original crops against one trained on masked crops;
    KL(original || masked) per test cell, or of the mean distributions per group.
    """

    original: str
    masked: str
    per: str = Field("cell", description="cell, or a /cells column to group by (e.g. well)")


MMDGrouping = Annotated[str, Field(pattern=r"^(label|Metadata_\w+(\+Metadata_\w+)*)$")]


class MMDConfig(StrictModel):
    """MMD^2 between groups of test cells in each embedding model's embeddings.

    The kernel is the sum of Gaussian kernels of widths sigma x each multiplier, sigma being
    the median distance between the embedded test cells (median heuristic);
    `cellbench.evaluate.distributions.group_mmd` has the details. Several groupings (e.g. per
    treatment and per mechanism) are measured in one run and written to one ``mmd.csv``, its
    ``grouping`` column naming each.
    """

    group_by: MMDGrouping | Annotated[list[MMDGrouping], Field(min_length=1)] | None = Field(
        None,
        description="what the groups are: `label` (the label column), a metadata column "
        "(e.g. Metadata_Compound), columns joined by + (Metadata_Compound+"
        "Metadata_Concentration: one group per treatment), or a list of these, one table "
        "each; null: the label column",
    )

    @property
    def groupings(self) -> list[str]:
        """Each grouping measured, in order: ``label`` or metadata column(s) joined by +."""
        if self.group_by is None:
            return ["label"]
        chosen = [self.group_by] if isinstance(self.group_by, str) else self.group_by
        return list(dict.fromkeys(chosen))

    multipliers: list[Annotated[float, Field(gt=0)]] = Field(
        default_factory=lambda: [0.5, 1.0, 1.5, 2.0],
        min_length=1,
        description="kernel widths as multiples of the median-heuristic sigma",
    )
    n_bootstrap: int = Field(20, ge=0, description="resamples of each group (95% interval)")
    max_cells: int = Field(500, ge=4, description="cells per group, at most (kernel N x N)")
    seed: int = 0


class EvaluateConfig(StrictModel):
    """Extra analyses of the evaluate stage."""

    mmd: MMDConfig | None = Field(
        default_factory=MMDConfig,
        description="MMD^2 between groups for every embedding model (mmd.csv); null: none",
    )
    kmeans_clusters: int | None = Field(
        None,
        ge=2,
        description="clusters of the KMeans silhouette of embedding models' test cells "
        "(silhouette_kmeans); null: the number of classes",
    )


class PublishedResult(StrictModel):
    """A number a published study reports, set beside this experiment's own in the report."""

    model: ModelName = Field(description="the model of this experiment that reproduces it")
    metric: str = Field(
        pattern=r"^\w+$", description="a key of the model's metrics.json, e.g. accuracy or map"
    )
    value: float | tuple[float, float] = Field(
        description="the published value, or [low, high] when a range is published"
    )
    source: str = Field(description="where it is published, e.g. 'S4 notebook cell 1, 5 folds'")
    note: str = Field("", description="what differs between the study's setup and this one")


class ParameterSweep(StrictModel):
    """Accuracy against one setting over models that differ only in it (the study's tree sweep).

    The aggregate stage writes the table ``sweep <name>`` (the setting's value, accuracy mean
    and ± 3 SE over seeds, per model) and the figure ``sweep_<name>.png``.
    """

    name: ModelName = Field(description="the sweep's name in the table and the figure's file")
    models: Annotated[list[ModelName], Field(min_length=2)] = Field(
        description="the models of the sweep, each with a number under `parameter`"
    )
    parameter: str = Field(
        pattern=r"^\w+$", description="the model setting on the x axis, e.g. n_estimators"
    )


ZScoreColumns = Annotated[
    list[Annotated[str, Field(pattern=r"^Metadata_\w+$")]], Field(min_length=1)
]


class EmbeddingFigures(StrictModel):
    """How the report draws each embedding model's test cells: UMAP, PCA, t-SNE, clustermap."""

    zscore_by: ZScoreColumns | None = Field(
        None,
        description="metadata columns (e.g. [Metadata_Plate], the replicate) whose groups of "
        "test cells are each z-scored before the UMAP, PCA, t-SNE and per-well clustermap: "
        "every embedding dimension to mean 0 and SD 1 within the group (a constant one "
        "becomes 0), as the nucleocentric study does per replicate; the titles say so. A "
        "model whose embeddings lack a column is logged and drawn without; null: the "
        "embeddings as the model gave them",
    )


class FeatureClustermap(StrictModel):
    """A clustermap of cells x handcrafted features, rows coloured by class.

    The nucleocentric study's: every labelled cell's features z-scored within its well (the
    per-well z-score of its random forest, `cellbench.models.feature_prep.zscore_per_group`),
    at most `max_cells` cells drawn, each class in proportion and every class shown, and the
    features undefined or constant among them left out. Written as
    ``feature_clustermap.png`` when the experiment has feature tables.
    """

    zscore_by: ZScoreColumns | None = Field(
        default_factory=lambda: ["Metadata_Plate", "Metadata_Well"],
        description="metadata columns whose groups of cells are each z-scored (every feature "
        "to mean 0, SD 1 within the group, a constant one 0); the default, plate and well, "
        "is per well; null: z-scored over every cell",
    )
    max_cells: int = Field(
        500,
        ge=2,
        description="cells drawn, at most: each class in proportion to its size, at least "
        "one cell of each",
    )
    seed: int = Field(0, description="seed of the draw of cells")


class ReportConfig(StrictModel):
    """Extra analyses of the aggregate stage."""

    kl_pairs: list[KLPair] = Field(default_factory=list)
    sweeps: list[ParameterSweep] = Field(
        default_factory=list, description="accuracy against a setting over several models"
    )
    embeddings: EmbeddingFigures = Field(
        default_factory=EmbeddingFigures,
        description="how embedding models' test cells are drawn (zscore_by: per replicate)",
    )
    feature_clustermap: FeatureClustermap | None = Field(
        None,
        description="a clustermap of cells x handcrafted features z-scored per well, e.g. "
        "{max_cells: 500} (feature_clustermap.png); null: none",
    )
    published: list[PublishedResult] = Field(
        default_factory=list,
        description="published numbers shown beside ours in the report's first table",
    )
