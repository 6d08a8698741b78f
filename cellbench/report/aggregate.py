"""Assemble the report: tables across seeds, figures, and one HTML page with provenance."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd

from cellbench.config import EMBEDDING_TYPES, TORCH_TYPES
from cellbench.config.yaml_file import config_yaml
from cellbench.io.atomic import atomic_path, write_text
from cellbench.paths import ResultsPaths
from cellbench.report import gallery
from cellbench.report.crop_comparison import crop_comparison_report
from cellbench.report.figures import save_figure
from cellbench.report.generation import generation_figures
from cellbench.report.html import write_index_html
from cellbench.report.mmd import mmd_report
from cellbench.report.profiles import profile_representation
from cellbench.report.published import published_table
from cellbench.report.summary import accuracy_chart, answer_lines, summary_html
from cellbench.report.sweeps import sweep_report
from cellbench.report.tables import (
    classification_report,
    fold_notes,
    per_class_accuracy,
    summarise_accuracy,
    summarise_metrics,
    to_latex,
    to_markdown,
)

log = logging.getLogger(__name__)

ACCURACY_COLUMNS = [
    "model",
    "input",
    "n_seeds",
    "accuracy_mean",
    "accuracy_sd",
    "accuracy_pm3se",
    "balanced_accuracy_mean",
    "macro_f1_mean",
    "majority_rate_mean",
]
REPRESENTATION_METRICS = [
    "silhouette",
    "silhouette_kmeans",
    "map",
    "nsc",
    "mmd2_between",
    "mmd2_within",
]
GENERATION_METRICS = ["reconstruction_mse", "ssim", "generated_features_mean_pearson_r"]


def build_report(
    config, missing_tasks: list[str], timings: pd.DataFrame, notes: list[str] = ()
) -> dict:
    """Write the tables (CSV, Markdown, LaTeX), the figures and ``report/index.html``.

    Parameters
    ----------
    config : Config
    missing_tasks : list of str
        Upstream tasks that did not finish, named ``stage/task``, listed in the report.
    timings : DataFrame
        stage, task, state, seconds of every task.
    notes : list of str
        Lines about the input shown under the summary and in ``accuracy.md``, e.g. what
        ``data.exclude`` left out (`cellbench.report.exclusions.exclusion_note`).

    Returns
    -------
    dict
        Paths written and the missing tasks, for the task's status.
    """
    paths = ResultsPaths(config.results_root)
    notes = [*notes, *fold_notes(config)]
    records = []
    for model in config.models:
        for seed in config.seeds:
            path = paths.metrics(model.name, seed)
            if path.exists():
                records.append(json.loads(path.read_text()))
            else:
                missing_tasks = [*missing_tasks, f"evaluate/{model.name}.seed{seed}"]
    missing_tasks = sorted(set(missing_tasks))
    classified = [r for r in records if "accuracy" in r]
    handcrafted = _handcrafted_representation(config, paths)
    profiles = profile_representation(config, paths)
    records_with_features = records + [r for r in (handcrafted, profiles) if r]
    tables = {
        "published vs ours": published_table(config.report.published, records),
        "accuracy": summarise_accuracy(classified) if classified else pd.DataFrame(),
        "per-class accuracy": per_class_accuracy(classified),
        "classification report": classification_report(classified),
        "representations": summarise_metrics(records_with_features, REPRESENTATION_METRICS),
        "generation": summarise_metrics(records, GENERATION_METRICS),
    }
    if not tables["accuracy"].empty:
        tables["accuracy"] = tables["accuracy"][ACCURACY_COLUMNS]
    tables = {name: table for name, table in tables.items() if not table.empty}
    figures = _figures(config, paths, records)
    sweep_tables, sweep_figures = sweep_report(config, tables.get("accuracy"), paths)
    tables.update(sweep_tables)
    figures += sweep_figures
    crop_tables, crop_figures = crop_comparison_report(config, tables.get("accuracy"), paths)
    tables.update(crop_tables)
    figures += crop_figures
    for pair in config.report.kl_pairs:
        summary, pngs = _kl_study(pair, config.seeds[0], paths)
        tables[f"KL {pair.original} vs {pair.masked}"] = summary
        figures += pngs
    if config.evaluate.mmd is not None:
        embedders = [m for m in config.models if m.type in EMBEDDING_TYPES]
        mmd_tables, mmd_figures = mmd_report(paths, embedders, config.seeds)
        tables.update(mmd_tables)
        figures += mmd_figures
    study = _background_study(config, paths)
    if study is not None:
        tables["background study (Table 1)"] = study["table"]
        figures += [p for p in study["written"] if p.suffix == ".png"]
    written = _write_tables(tables, paths, config.name, missing_tasks, notes) + figures
    summary, chart_files = _summary(tables, paths, notes)
    index = write_index_html(
        paths.report_dir,
        f"{config.name}: cellbench report",
        tables,
        figures,
        config_yaml(config),
        None,
        timings,
        missing_tasks,
        summary,
    )
    written += chart_files
    written.append(index)
    log.info("report: %d model run(s), %d missing task(s)", len(records), len(missing_tasks))
    return {"written": [str(p) for p in written], "missing_tasks": missing_tasks}


def _summary(tables: dict, paths: ResultsPaths, notes: list[str]) -> tuple[str, list[Path]]:
    """The summary block that opens the page (the notes under it), and its accuracy chart."""
    accuracy = tables.get("accuracy")
    chart_files, chart, majority = [], None, None
    if accuracy is not None and not accuracy.empty:
        chart_files = accuracy_chart(accuracy, paths.report_file("summary_accuracy"))
        chart = chart_files[0]
        if "majority_rate_mean" in accuracy and accuracy["majority_rate_mean"].notna().any():
            majority = float(accuracy["majority_rate_mean"].max())
    return summary_html(answer_lines(tables), chart, majority, notes), chart_files


def _write_tables(
    tables: dict, paths: ResultsPaths, title: str, missing: list[str], notes: list[str]
) -> list[Path]:
    """Each table as CSV and LaTeX, all of them in ``summary.md``; ``accuracy.md`` as before."""
    written = []
    for name, table in tables.items():
        stem = name.replace(" ", "_").replace("-", "_")
        csv, tex = paths.report_file(f"{stem}.csv"), paths.report_file(f"{stem}.tex")
        with atomic_path(csv) as tmp:
            table.to_csv(tmp, index=False)
        write_text(tex, to_latex(table, f"{title}: {name}"))
        written += [csv, tex]
    lines = [f"# {title}: results on held-out cells\n", *(f"{note}\n" for note in notes)]
    if not tables:
        lines.append("No model finished.\n")
    for name, table in tables.items():
        lines += [f"## {name}\n", to_markdown(table)]
    lines.append("## Missing tasks\n")
    lines.append(
        "\n".join(f"- {t}" for t in missing) + "\n" if missing else "None: every task finished.\n"
    )
    markdown = paths.report_file("accuracy.md")
    write_text(markdown, "\n".join(lines))
    written.append(markdown)
    return written


def _handcrafted_representation(config, paths: ResultsPaths) -> dict | None:
    """The handcrafted features as a representation: standardised, scored on every cell."""
    from cellbench.config import RandomForestModel
    from cellbench.data.plates import list_plates
    from cellbench.evaluate.run import representation_metrics
    from cellbench.models.inputs import load_model_data
    from cellbench.models.standardise import fit_standardisation

    every_feature = RandomForestModel(name="handcrafted")  # reads every feature column

    tables = [paths.feature_table(p) for p in list_plates(config)]
    tables = [t for t in tables if t.exists()]
    if not tables:
        return None
    try:
        data = load_model_data(
            every_feature, config.data.label_column, tables, [], split=config.split
        )
    except Exception as exc:  # no labelled cell: no row, the rest of the report stands
        log.warning("report: no handcrafted representation row (%s)", exc)
        return None
    x = fit_standardisation(data.features).apply(data.features)
    metrics = representation_metrics(data.cells, x, data.labels, config.seeds[0])
    return {"model": "handcrafted", "input": "features", "seed": config.seeds[0], **metrics}


def _kl_study(pair, seed: int, paths: ResultsPaths) -> tuple[pd.DataFrame, list[Path]]:
    """KL(original || masked) of two classifiers' predictions on their test cells.

    Per cell (class probabilities), or per group (``pair.per``, a metadata column) both of
    the mean probabilities (column ``kl``) and of the proportions of predicted classes
    (``kl_of_proportions``, the study's Figure 3A definition); writes the values as CSV and
    a histogram with quartile lines of each (``kl_<a>_vs_<b>`` and, per group,
    ``kl_<a>_vs_<b>_proportions``). Returns one summary row per statistic and the PNGs.
    """
    from cellbench.evaluate.distributions import (
        group_kl_divergence,
        kl_divergence,
        proportion_kl_divergence,
    )
    from cellbench.features.measure import metadata_column

    tables = [
        pd.read_parquet(paths.predictions(name, seed)) for name in (pair.original, pair.masked)
    ]
    key = metadata_column("cell_id")
    merged = tables[0].merge(tables[1], on=key, suffixes=("", "_masked"))
    merged = merged[(merged["split"] == "test") & (merged["split_masked"] == "test")]
    classes = [c for c in tables[0].columns if c.startswith("probability_") and c in tables[1]]
    p = merged[classes].to_numpy()
    q = merged[[f"{c}_masked" for c in classes]].to_numpy()
    statistics = {}
    if pair.per == "cell":
        values = pd.DataFrame({"cell_id": merged[key], "kl": kl_divergence(p, q)})
        statistics["per cell"] = ("kl", "")
    else:
        groups = merged[metadata_column(pair.per)].astype(str).to_numpy()
        values = group_kl_divergence(p, q, groups).rename(columns={"kl_of_means": "kl"})
        names = [c.removeprefix("probability_") for c in classes]
        shares = proportion_kl_divergence(
            merged["predicted"].astype(str).to_numpy(),
            merged["predicted_masked"].astype(str).to_numpy(),
            groups,
            names,
        )
        values = values.merge(shares[["group", "kl_of_proportions"]], on="group", how="left")
        statistics["mean probabilities"] = ("kl", "")
        statistics["predicted proportions"] = ("kl_of_proportions", "_proportions")
    stem = f"kl_{pair.original}_vs_{pair.masked}"
    with atomic_path(paths.report_file(f"{stem}.csv")) as tmp:
        values.to_csv(tmp, index=False)
    rows, pngs = [], []
    for statistic, (column, suffix) in statistics.items():
        pngs.append(_kl_histogram(values[column], pair, statistic, paths, stem + suffix))
        quartiles = values[column].quantile([0.25, 0.5, 0.75]).to_numpy()
        rows.append(
            {
                "original": pair.original,
                "masked": pair.masked,
                "per": pair.per,
                "statistic": statistic,
                "n": len(values),
                "kl_mean": float(values[column].mean()),
                "kl_q1": quartiles[0],
                "kl_median": quartiles[1],
                "kl_q3": quartiles[2],
            }
        )
    return pd.DataFrame(rows), pngs


def _kl_histogram(kl: pd.Series, pair, statistic: str, paths: ResultsPaths, stem: str) -> Path:
    """Figure 3A of one KL statistic (histogram, quartile lines); returns its PNG."""
    from cellbench.report.figures import kl_histogram_figure

    title = f"KL({pair.original} || {pair.masked}), test cells, {statistic}"
    figure = kl_histogram_figure(kl.to_numpy(), unit=pair.per, title=title)
    return next(p for p in save_figure(figure, paths.report_figure(stem)) if p.suffix == ".png")


def _background_study(config, paths: ResultsPaths) -> dict | None:
    """Table 1 and Figure 2 of the pipeline's own background experiments, if configured."""
    from cellbench.data.plates import list_plates
    from cellbench.evaluate.background_study import background_study
    from cellbench.report.background_swap import write_background_swap

    settings = config.crops.background
    if settings is None or settings.study is None:
        return None
    stores = [paths.crop_store(p) for p in list_plates(config) if paths.crop_store(p).exists()]
    if not stores:
        return None
    folder = paths.background_study_dir
    study = settings.study
    background_study(
        stores,
        config.data.label_column,
        paths.background_study_results("crops"),  # one "model": PCA of the flattened crops
        size_px=study.size_px,
        components=study.components,
        folds=study.folds,
        max_per_class=study.max_per_class,
        seed=config.seeds[0],
    )
    return write_background_swap(folder, folder, classes=None)


def _figures(config, paths: ResultsPaths, records: list[dict]) -> list[Path]:
    """Every figure the results allow; one failing figure is logged and left out."""
    from cellbench.data.plates import has_fields, list_plates
    from cellbench.features.measure import metadata_column
    from cellbench.report.feature_clustermap import feature_clustermap_figures

    seed = config.seeds[0]
    plates = list_plates(config)
    torch_models = [m for m in config.models if m.type in TORCH_TYPES]
    embedders = [m for m in config.models if m.type in EMBEDDING_TYPES]
    explained = [m for m in config.models if m.gives_gradcam]
    analysed = [m for m in config.models if m.gives_latent_analysis]
    generators = [m for m in config.models if m.gives_generation_grids]
    label = metadata_column(config.data.label_column)
    stores = [paths.crop_store(p) for p in plates if paths.crop_store(p).exists()]
    tables = [paths.feature_table(p) for p in plates if paths.feature_table(p).exists()]
    zscore = {"zscore_by": config.report.embeddings.zscore_by}
    makers = [
        ("confusion", lambda: gallery.confusion_figures(records, paths)),
        ("ROC and PR curves", lambda: gallery.class_curve_figures(paths, config.models, seed)),
        ("training curves", lambda: gallery.training_curve_figures(paths, torch_models, seed)),
        ("UMAP", lambda: gallery.embedding_figures(paths, embedders, seed, label, **zscore)),
        (
            "PCA and t-SNE",
            lambda: gallery.projection_figures(paths, embedders, seed, label, **zscore),
        ),
        ("clustermap", lambda: gallery.clustermap_figures(paths, embedders, seed, label, **zscore)),
        ("NSC confusion", lambda: gallery.nsc_confusion_figures(paths, embedders, seed)),
        (
            "nearest neighbours",
            lambda: gallery.neighbour_mosaics(paths, embedders, seed, label, stores),
        ),
        ("Grad-CAM", lambda: gallery.gradcam_figures(paths, explained, seed)),
        ("VAE latents", lambda: gallery.latent_figures(paths, analysed, seed)),
        ("generation grids", lambda: generation_figures(paths, generators, seed)),
        ("cells per well", lambda: gallery.plate_heatmap_figures(tables, paths)),
        (
            "feature clustermap",
            lambda: feature_clustermap_figures(
                tables,
                config.data.label_column,
                config.report.feature_clustermap,
                paths,
                split=config.split,
            ),
        ),
    ]
    if stores:
        kind = config.crop_kinds()[0]
        makers.append(
            (
                "montage",
                lambda: gallery.montage_figure(stores[0], kind, config.data.label_column, paths),
            )
        )
    if plates and has_fields(config):
        makers.append(("segmentation", lambda: gallery.segmentation_figure(config, plates[0])))
    figures: list[Path] = []
    for name, make in makers:
        try:
            figures += make()
        except OSError:  # a full disk or a read-only folder: the report is incomplete
            raise
        except Exception as exc:  # missing results for one figure never fail the report
            log.warning("report: no %s figure (%s: %s)", name, type(exc).__name__, exc)
    return figures
