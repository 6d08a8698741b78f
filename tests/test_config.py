import subprocess
import sys

import pytest

from cellbench.config import MODEL_TYPES, ModelConfig, load_config
from cellbench.config.base import union_members
from cellbench.errors import ConfigError
from tests.helpers import REPO, experiment_dict, write_config


def config_error(tmp_path, raw) -> str:
    path = write_config(tmp_path / "config.yaml", raw)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return str(info.value)


def test_demo_config_loads():
    config = load_config(REPO / "configs" / "demo.yaml")
    assert config.name == "demo"
    assert config.results_root.is_absolute()
    assert config.data.input.source == "synthetic"


def test_typo_in_key_is_named_with_a_suggestion(tmp_path):
    raw = experiment_dict(tmp_path / "r")
    raw["segmentation"] = {"nuclei": {"smothing_sigma_px": 2}}
    message = config_error(tmp_path, raw)
    assert "segmentation.nuclei.smothing_sigma_px" in message
    assert "did you mean 'smoothing_sigma_px'" in message
    assert len(message.splitlines()) == 1


def test_wrong_type_names_key_and_value(tmp_path):
    raw = experiment_dict(tmp_path / "r")
    raw["data"]["input"]["sites"] = "three"
    message = config_error(tmp_path, raw)
    assert "data.input.sites" in message
    assert "'three'" in message


def test_unknown_model_type_lists_valid_ones(tmp_path):
    raw = experiment_dict(tmp_path / "r", models=[{"name": "m", "type": "random_forrest"}])
    message = config_error(tmp_path, raw)
    assert "models.0" in message
    assert "random_forrest" in message and "random_forest" in message


def test_unknown_segmentation_method(tmp_path):
    raw = experiment_dict(tmp_path / "r", segmentation={"cells": {"method": "magic"}})
    message = config_error(tmp_path, raw)
    assert "segmentation.cells" in message and "'magic'" in message
    assert "'cellpose'" in message


def test_missing_input_folder(tmp_path):
    raw = experiment_dict(tmp_path / "r")
    raw["data"]["input"] = {"source": "fields", "root": str(tmp_path / "nowhere")}
    message = config_error(tmp_path, raw)
    assert "data.input.root" in message
    assert "nowhere" in message and "does not exist" in message


def test_channel_not_in_data_channels(tmp_path):
    raw = experiment_dict(tmp_path / "r", segmentation={"nucleus_channel": "Hoechst"})
    message = config_error(tmp_path, raw)
    assert "segmentation.nucleus_channel" in message and "Hoechst" in message


def test_duplicate_model_names(tmp_path):
    model = {"name": "rf", "type": "random_forest"}
    message = config_error(tmp_path, experiment_dict(tmp_path / "r", models=[model, model]))
    assert "duplicate model names" in message


def test_environment_variables_expand(tmp_path, monkeypatch):
    monkeypatch.setenv("RESULTS_BASE", str(tmp_path))
    monkeypatch.setenv("CELLBENCH_DATA", str(tmp_path))
    (tmp_path / "plates").mkdir()
    raw = experiment_dict("${RESULTS_BASE}/out")
    raw["data"]["input"] = {"source": "fields", "root": "${CELLBENCH_DATA}/plates"}
    config = load_config(write_config(tmp_path / "c.yaml", raw))
    assert config.results_root == tmp_path / "out"
    assert config.data.input.root == tmp_path / "plates"


def test_unset_environment_variable_is_named(tmp_path, monkeypatch):
    monkeypatch.delenv("NO_SUCH_VARIABLE_X", raising=False)
    message = config_error(tmp_path, experiment_dict("${NO_SUCH_VARIABLE_X}/out"))
    assert "results_root" in message and "NO_SUCH_VARIABLE_X" in message


def test_submit_exits_2_with_one_line_on_a_typo(tmp_path):
    raw = experiment_dict(tmp_path / "r")
    raw["split"] = {"by": "well", "test_fractoin": 0.3}
    path = write_config(tmp_path / "c.yaml", raw)
    run = subprocess.run(
        [sys.executable, str(REPO / "jobs" / "submit.py"), "--config", str(path), "--stage", "all"],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 2
    assert "split.test_fractoin" in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()


def test_kl_pairs_name_models_that_give_probabilities(tmp_path):
    from cellbench.config import config_from_dict
    from tests.helpers import experiment_dict

    raw = experiment_dict(tmp_path / "results")
    raw["models"] = [{"name": "rf", "type": "random_forest"}, {"name": "svm", "type": "svm"}]
    raw["report"] = {"kl_pairs": [{"original": "rf", "masked": "nope"}]}
    with pytest.raises(ConfigError, match="report.kl_pairs.0.masked: no model named 'nope'"):
        config_from_dict(raw)
    raw["report"] = {"kl_pairs": [{"original": "rf", "masked": "svm"}]}
    with pytest.raises(ConfigError, match="'svm' gives no class probabilities"):
        config_from_dict(raw)


def test_a_crop_model_names_a_crop_kind_of_the_experiment(tmp_path):
    from cellbench.config import config_from_dict
    from tests.helpers import experiment_dict

    raw = experiment_dict(tmp_path / "results")
    raw["models"] = [{"name": "cnn", "type": "resnet", "crop_kind": "whole_cel"}]
    with pytest.raises(ConfigError, match="models.0.crop_kind: 'whole_cel' is not a crop kind"):
        config_from_dict(raw)
    raw["models"] = [{"name": "lr", "type": "logistic_regression", "input": "crops"}]
    with pytest.raises(ConfigError, match="crop_kind"):
        config_from_dict(raw)


def test_an_embedding_input_names_a_resnet_or_vae(tmp_path):
    from cellbench.config import config_from_dict
    from cellbench.stages import list_tasks

    raw = experiment_dict(tmp_path / "results")
    probe = {"name": "probe", "type": "logistic_regression", "input": "embeddings"}
    raw["models"] = [{"name": "rf", "type": "random_forest"}, probe]
    with pytest.raises(ConfigError, match="embedding_model: required"):
        config_from_dict(raw)
    probe["embedding_model"] = "rf"
    with pytest.raises(ConfigError, match="models.1.embedding_model: 'rf' is not a resnet or vae"):
        config_from_dict(raw)
    raw["models"].append({"name": "cnn", "type": "resnet", "crop_kind": "whole_cell"})
    probe["embedding_model"] = "cnn"
    config = config_from_dict(raw)
    assert list_tasks(config, "train") == ["rf.seed0", "cnn.seed0"]  # the probe has no train
    assert list_tasks(config, "evaluate") == ["rf.seed0", "probe.seed0", "cnn.seed0"]


def model_entry(model_type: str, **keys) -> dict:
    """A model entry of `model_type`, with a crop kind where the type requires one."""
    entry = {"name": "m", "type": model_type}
    fields = union_members(ModelConfig)[model_type].model_fields
    if "crop_kind" in fields and fields["crop_kind"].is_required():
        entry["crop_kind"] = "whole_cell"
    return {**entry, **keys}


@pytest.mark.parametrize("model_type", MODEL_TYPES)
def test_a_bad_value_in_a_model_entry_is_named_without_the_type_tag(tmp_path, model_type):
    raw = experiment_dict(tmp_path / "r", models=[model_entry(model_type, name="../m")])
    message = config_error(tmp_path, raw)
    assert "models.0.name: '../m' is not a valid model name" in message
    assert f".{model_type}." not in message
    assert len(message.splitlines()) == 1


@pytest.mark.parametrize("model_type", MODEL_TYPES)
def test_a_typo_in_a_model_entry_is_named_with_a_suggestion(tmp_path, model_type):
    raw = experiment_dict(tmp_path / "r", models=[model_entry(model_type, nmae="x")])
    message = config_error(tmp_path, raw)
    assert "models.0.nmae: unknown key 'nmae'; did you mean 'name'?" in message
    assert f".{model_type}." not in message


def test_a_section_named_like_a_tag_keeps_its_name(tmp_path):
    # "crops" is a section and a data source; only the union's tag is left out of the path.
    raw = experiment_dict(tmp_path / "r")
    raw["crops"] = {"kinds": {"whole_cell": {"size_px": -1}}}
    message = config_error(tmp_path, raw)
    assert "crops.kinds.whole_cell.size_px:" in message


def test_old_region_names_get_the_cellprofiler_name(tmp_path):
    raw = experiment_dict(tmp_path / "r")
    raw["features"] = {"regions": ["Nuclei", "Cell"]}
    message = config_error(tmp_path, raw)
    assert "features.regions.1" in message and "'Cell' is now 'Cells'" in message


def test_evaluate_only_settings_rerun_the_evaluation_not_the_training(tmp_path):
    from cellbench.config import config_from_dict
    from cellbench.stages import task_hash

    resnet = {"name": "r", "type": "resnet", "crop_kind": "whole_cell", "epochs": 2}
    vae = {"name": "v", "type": "vae", "crop_kind": "whole_cell"}
    probe = {"name": "p", "type": "logistic_regression", "input": "embeddings"}
    probe["embedding_model"] = "v"
    base = config_from_dict(experiment_dict(tmp_path / "r", models=[resnet, vae, probe]))

    def hashes(config, task):
        return task_hash(config, "train", task), task_hash(config, "evaluate", task)

    for changes, task in [
        ([{**resnet, "gradcam_cells": 4}, vae, probe], "r.seed0"),
        ([{**resnet, "gradcam_layer": "layer3"}, vae, probe], "r.seed0"),
        ([{**resnet, "gradcam_target": "predicted"}, vae, probe], "r.seed0"),
        ([resnet, {**vae, "analysis_cells": 2}, probe], "v.seed0"),
    ]:
        changed = config_from_dict(experiment_dict(tmp_path / "r", models=changes))
        (train, evaluate), (train_before, evaluate_before) = (
            hashes(changed, task),
            hashes(base, task),
        )
        assert train == train_before and evaluate != evaluate_before, changes
        assert hashes(changed, "p.seed0") == hashes(base, "p.seed0")  # its source's training
    retrained = config_from_dict(
        experiment_dict(tmp_path / "r", models=[{**resnet, "epochs": 3}, vae, probe])
    )
    after, before = hashes(retrained, "r.seed0"), hashes(base, "r.seed0")
    assert after[0] != before[0] and after[1] != before[1]


@pytest.mark.parametrize("key, value", [("analysis_cells", 2), ("analysis_treatments", 6)])
def test_generation_grid_settings_rerun_the_evaluation_not_the_training(tmp_path, key, value):
    from cellbench.config import config_from_dict
    from cellbench.stages import task_hash

    generator = {"name": "g", "type": "cp2image", "crop_kind": "whole_cell"}
    base = config_from_dict(experiment_dict(tmp_path / "r", models=[generator]))
    changed = {**generator, key: value}
    changed = config_from_dict(experiment_dict(tmp_path / "r", models=[changed]))
    assert task_hash(changed, "train", "g.seed0") == task_hash(base, "train", "g.seed0")
    assert task_hash(changed, "evaluate", "g.seed0") != task_hash(base, "evaluate", "g.seed0")


def test_evaluate_mmd_is_on_by_default_checked_and_hashed_only_for_embedding_models(tmp_path):
    from cellbench.config import config_from_dict
    from cellbench.stages import task_hash, task_outputs

    models = [
        {"name": "rf", "type": "random_forest"},
        {"name": "vae", "type": "vae", "crop_kind": "whole_cell"},
    ]
    raw = experiment_dict(tmp_path / "results", models=models)
    config = config_from_dict(raw)
    assert config.evaluate.mmd.multipliers == [0.5, 1.0, 1.5, 2.0]
    assert config.evaluate.mmd.group_by is None and config.evaluate.mmd.n_bootstrap == 20
    assert [p.name for p in task_outputs(config, "evaluate", "vae.seed0")][-1] == "mmd.csv"
    assert "mmd.csv" not in [p.name for p in task_outputs(config, "evaluate", "rf.seed0")]

    raw["evaluate"] = {"mmd": {"group_by": "Metadata_Well", "n_bootstrap": 5}}
    changed = config_from_dict(raw)
    assert task_hash(changed, "evaluate", "vae.seed0") != task_hash(config, "evaluate", "vae.seed0")
    assert task_hash(changed, "evaluate", "rf.seed0") == task_hash(config, "evaluate", "rf.seed0")
    assert task_hash(changed, "train", "vae.seed0") == task_hash(config, "train", "vae.seed0")
    several = ["Metadata_Compound+Metadata_Concentration", "label", "label"]
    raw["evaluate"] = {"mmd": {"group_by": several}}
    groupings = config_from_dict(raw).evaluate.mmd.groupings
    assert groupings == ["Metadata_Compound+Metadata_Concentration", "label"]  # once each
    raw["evaluate"] = {"mmd": None}
    off = config_from_dict(raw)
    assert off.evaluate.mmd is None
    assert "mmd.csv" not in [p.name for p in task_outputs(off, "evaluate", "vae.seed0")]

    for bad, key in [
        ({"group_by": "Compound"}, "evaluate.mmd.group_by"),
        ({"group_by": []}, "evaluate.mmd.group_by"),
        ({"group_by": ["label", "Metadata_Compound+Dose"]}, "evaluate.mmd.group_by"),
        ({"multipliers": [1.0, -0.5]}, "evaluate.mmd.multipliers"),
        ({"multipliers": []}, "evaluate.mmd.multipliers"),
        ({"max_cells": 1}, "evaluate.mmd.max_cells"),
    ]:
        raw["evaluate"] = {"mmd": bad}
        with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
            config_from_dict(raw)


def test_split_folds_validate(tmp_path):
    raw = experiment_dict(tmp_path / "r", seeds=[0, 1, 2])
    raw["split"] = {"by": "cell", "folds": 3}
    config = load_config(write_config(tmp_path / "ok.yaml", raw))
    assert (config.split.folds, config.split.fold_seed) == (3, 42)
    raw["split"] = {"by": "cell", "folds": 1}
    assert "split.folds" in config_error(tmp_path, raw)
    raw["split"] = {"by": "well", "folds": 3}
    assert "by: cell" in config_error(tmp_path, raw)


def test_seeds_beyond_the_folds_are_refused(tmp_path):
    raw = experiment_dict(tmp_path / "r", seeds=[0, 1, 5])
    raw["split"] = {"by": "cell", "folds": 5}
    message = config_error(tmp_path, raw)
    assert "seeds" in message and "split.folds: 5" in message and "[5]" in message
    raw = experiment_dict(tmp_path / "r", seeds=[0, 3])
    raw["models"][0]["split"] = {"by": "cell", "folds": 2}
    assert "models.0.split.folds: 2" in config_error(tmp_path, raw)


def test_incremental_pca_needs_a_count_within_the_batch(tmp_path):
    raw = experiment_dict(tmp_path / "r")
    raw["models"][0].update(pca_method="incremental", pca_components=0.9)
    assert "pca_components" in config_error(tmp_path, raw)
    raw["models"][0].update(pca_components=100, pca_batch_size=50)
    assert "pca_batch_size: 50" in config_error(tmp_path, raw)
    raw["models"][0].update(pca_batch_size=256)
    model = load_config(write_config(tmp_path / "ok.yaml", raw)).models[0]
    assert (model.pca_method, model.pca_batch_size) == ("incremental", 256)


def test_feature_columns_exclude_groups_and_regions(tmp_path):
    raw = experiment_dict(tmp_path / "r")
    raw["models"][0].update(feature_columns=["Image_Count_Nuclei"], feature_groups=["Texture"])
    assert "feature_columns" in config_error(tmp_path, raw)


def test_resnet_weights_hash_the_file_bytes_and_need_width_64(tmp_path):
    from cellbench.config import config_from_dict
    from cellbench.stages import task_hash

    weights = tmp_path / "r18.pt"
    weights.write_bytes(b"first")
    entry = {"name": "cnn", "type": "resnet", "crop_kind": "whole_cell", "weights": str(weights)}
    raw = experiment_dict(tmp_path / "results", models=[entry])
    before = task_hash(config_from_dict(raw), "train", "cnn.seed0")
    weights.write_bytes(b"second")  # same name, other bytes: the model retrains
    assert task_hash(config_from_dict(raw), "train", "cnn.seed0") != before
    raw["models"] = [{**entry, "weights": None}]
    assert task_hash(config_from_dict(raw), "train", "cnn.seed0") != before

    raw["models"] = [{**entry, "width": 8}]
    assert "needs width: 64" in config_error(tmp_path, raw)


def test_resnet_gradcam_target_is_true_or_predicted(tmp_path):
    entry = {"name": "cnn", "type": "resnet", "crop_kind": "whole_cell", "gradcam_target": "best"}
    raw = experiment_dict(tmp_path / "results", models=[entry])
    assert "gradcam_target" in config_error(tmp_path, raw)


def test_a_fusion_resnet_reads_feature_tables_and_crop_stores(tmp_path):
    from cellbench.config import config_from_dict
    from cellbench.stages import task_inputs

    entry = {"name": "cnn", "type": "resnet", "crop_kind": "whole_cell", "input": "fusion"}
    entry["feature_groups"] = ["Intensity"]
    config = config_from_dict(experiment_dict(tmp_path / "results", models=[entry]))
    assert config.model("cnn").reads_features and config.model("cnn").reads_crops
    read = {p.parent.name for p in task_inputs(config, "train", "cnn.seed0")}
    assert read == {"features", "crops"}
