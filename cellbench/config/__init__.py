"""The experiment schema: one validated object, loaded from YAML.

Every setting of an experiment lives in one `Config`, validated when it is loaded, so that a typo
or a missing folder fails before any task runs. Only `cellbench.config.yaml_file` reads YAML.

Paths in the YAML may hold `${VAR}` environment variables; `${CELLBENCH_DATA}` defaults to
`../shared/data` beside the repository. Relative paths are taken from the current directory.

Examples
--------
>>> config = load_config("configs/demo.yaml")  # doctest: +SKIP
>>> config.results_root  # doctest: +SKIP
PosixPath('/.../results/demo')
"""

from cellbench.config.analyses import EvaluateConfig, MMDConfig
from cellbench.config.classical_models import (
    GradientBoostingModel,
    LogisticRegressionModel,
    RandomForestModel,
    SVMModel,
)
from cellbench.config.cluster import (
    ClusterProfile,
    ContainerConfig,
    ExecutionConfig,
    SlurmResourceOverride,
    SlurmResources,
    StageName,
)
from cellbench.config.crops import BackgroundConfig, CropKind, CropsConfig
from cellbench.config.data import (
    DATA_ENV_VAR,
    CropsSource,
    DataConfig,
    ExcludeConfig,
    FieldsSource,
    SyntheticSource,
    TableJoin,
    default_data_root,
)
from cellbench.config.generative_models import CP2ImageModel, VAEModel
from cellbench.config.loading import config_from_dict, load_config, stable_hash
from cellbench.config.model_base import TrainingConfig, training_settings
from cellbench.config.models import (
    CLASSICAL_TYPES,
    EMBEDDING_TYPES,
    MODEL_TYPES,
    PROBABILISTIC_TYPES,
    TORCH_TYPES,
    LogisticRegressionTorchModel,
    MLPModel,
    ModelConfig,
    ResNetModel,
)
from cellbench.config.schema import (
    CellProfilerTables,
    Config,
    FeaturesConfig,
    GroundTruthConfig,
    ProfilesConfig,
    TextureConfig,
)
from cellbench.config.segmentation import (
    CellposeCells,
    CellposeNuclei,
    ClassicalCells,
    ClassicalNuclei,
    NoCells,
    SegmentationConfig,
    StarDistNuclei,
)
from cellbench.config.split import SplitConfig

__all__ = [
    "DATA_ENV_VAR",
    "CellposeCells",
    "CellposeNuclei",
    "ClassicalCells",
    "ClassicalNuclei",
    "NoCells",
    "SegmentationConfig",
    "StarDistNuclei",
    "BackgroundConfig",
    "CellProfilerTables",
    "ClusterProfile",
    "Config",
    "ContainerConfig",
    "CropKind",
    "CropsConfig",
    "CropsSource",
    "DataConfig",
    "EvaluateConfig",
    "ExcludeConfig",
    "ExecutionConfig",
    "FeaturesConfig",
    "FieldsSource",
    "CLASSICAL_TYPES",
    "EMBEDDING_TYPES",
    "MODEL_TYPES",
    "PROBABILISTIC_TYPES",
    "TORCH_TYPES",
    "CP2ImageModel",
    "GradientBoostingModel",
    "LogisticRegressionModel",
    "LogisticRegressionTorchModel",
    "MLPModel",
    "MMDConfig",
    "ResNetModel",
    "SVMModel",
    "TrainingConfig",
    "training_settings",
    "VAEModel",
    "ModelConfig",
    "RandomForestModel",
    "SlurmResourceOverride",
    "SlurmResources",
    "SplitConfig",
    "StageName",
    "SyntheticSource",
    "TableJoin",
    "TextureConfig",
    "GroundTruthConfig",
    "ProfilesConfig",
    "config_from_dict",
    "default_data_root",
    "load_config",
    "stable_hash",
]
