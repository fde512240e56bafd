"""The one table of built-in scenes: files, ``.mat`` keys, classes, colours, sources.

Every built-in scene is a :class:`DatasetSpec` registered in :data:`DATASETS` under its
``lower_snake`` name. Files live in ``<data dir>/<spec.folder>/<file>``. Class ids are the
ids *as stored in the ground-truth file* (0 = unlabelled); the scene loader remaps them to
contiguous ``0..K-1``. Ids and pixel counts were checked against the published ``*_gt.mat``
files (``np.unique``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hsi._core.errors import ConfigError
from hsi._core.palette import PALETTE, default_palette
from hsi._core.registry import Registry

__all__ = ["DATASETS", "PALETTE", "DatasetSpec", "default_palette", "get_spec"]

_GIC_PAGE = "https://www.ehu.eus/ccwintco/index.php/Hyperspectral_Remote_Sensing_Scenes"
_HF_INDIAN_PINES = "https://huggingface.co/datasets/danaroth/indian_pines/resolve/main"


@dataclass(frozen=True)
class DatasetSpec:
    """Everything needed to find, fetch, verify and display one built-in scene.

    Args:
        name: registry key, ``lower_snake`` (e.g. ``"indian_pines"``).
        display_name: human name (e.g. ``"Indian Pines"``).
        folder: sub-folder of the data dir holding the files (equal to ``name``).
        cube_file: file name of the cube, shape (H, W, B).
        gt_file: file name of the ground truth, shape (H, W).
        cube_key: variable name of the cube inside ``cube_file``.
        gt_key: variable name of the ground truth inside ``gt_file``.
        class_ids: label ids as stored in ``gt_file``, ascending, 0 excluded; length K.
        class_names: one name per id; length K.
        urls: file name -> addresses to try, in order.
        sha256: file name -> published sha256, only where known.
        cube_shape: expected cube shape (H, W, B); verifies downloads without a sha256.
        rgb_bands: 0-based band indices (red, green, blue) for false-colour display.
        palette: one distinct hex colour per class; length K.
        citation: who to credit when the scene is used.
    """

    name: str
    display_name: str
    folder: str
    cube_file: str
    gt_file: str
    cube_key: str
    gt_key: str
    class_ids: tuple[int, ...]
    class_names: tuple[str, ...]
    urls: dict[str, tuple[str, ...]] = field(hash=False)
    sha256: dict[str, str] = field(hash=False)
    cube_shape: tuple[int, int, int]
    rgb_bands: tuple[int, int, int]
    palette: tuple[str, ...]
    citation: str

    def __post_init__(self) -> None:
        n_classes = len(self.class_ids)
        if not (len(self.class_names) == len(self.palette) == n_classes):
            raise ConfigError(
                f"dataset spec {self.name!r} needs one class name and one colour per class id; got "
                f"{n_classes} ids, {len(self.class_names)} names, {len(self.palette)} colours."
            )
        if list(self.class_ids) != sorted(set(self.class_ids)) or min(self.class_ids, default=1) < 1:
            raise ConfigError(
                f"dataset spec {self.name!r}: class ids must be unique, ascending and >= 1 "
                f"(0 = unlabelled); got {self.class_ids}."
            )
        if len(set(self.palette)) != n_classes:
            raise ConfigError(f"dataset spec {self.name!r}: palette colours must be distinct; got {self.palette}.")
        if any(not 0 <= b < self.cube_shape[2] for b in self.rgb_bands):
            raise ConfigError(
                f"dataset spec {self.name!r}: rgb bands must lie in 0..{self.cube_shape[2] - 1}; got {self.rgb_bands}."
            )

    @property
    def files(self) -> tuple[str, str]:
        """The scene's files: ``(cube_file, gt_file)``."""
        return (self.cube_file, self.gt_file)

    @property
    def n_classes(self) -> int:
        """K, the number of classes (unlabelled excluded)."""
        return len(self.class_ids)


def _ehu(*paths: str) -> tuple[str, ...]:
    """Addresses on the GIC server, under both host names public tools use."""
    return tuple(f"http://www.{host}/ccwintco/uploads/{p}" for p in paths for host in ("ehu.eus", "ehu.es"))


_SALINAS_NAMES = (
    "Brocoli_green_weeds_1", "Brocoli_green_weeds_2", "Fallow", "Fallow_rough_plow", "Fallow_smooth",
    "Stubble", "Celery", "Grapes_untrained", "Soil_vinyard_develop", "Corn_senesced_green_weeds",
    "Lettuce_romaine_4wk", "Lettuce_romaine_5wk", "Lettuce_romaine_6wk", "Lettuce_romaine_7wk",
    "Vinyard_untrained", "Vinyard_vertical_trellis",
)  # fmt: skip
_SALINAS_A_IDS = (1, 10, 11, 12, 13, 14)
_AVIRIS_SALINAS = (
    "AVIRIS scene over Salinas Valley, California (1998), 3.7 m pixels; distributed by the "
    f"Computational Intelligence Group, University of the Basque Country: {_GIC_PAGE}"
)

_SPECS = (
    DatasetSpec(
        name="indian_pines",
        display_name="Indian Pines",
        folder="indian_pines",
        cube_file="Indian_pines_corrected.mat",
        gt_file="Indian_pines_gt.mat",
        cube_key="indian_pines_corrected",
        gt_key="indian_pines_gt",
        class_ids=tuple(range(1, 17)),
        class_names=(
            "Alfalfa", "Corn-notill", "Corn-mintill", "Corn", "Grass-pasture", "Grass-trees",
            "Grass-pasture-mowed", "Hay-windrowed", "Oats", "Soybean-notill", "Soybean-mintill",
            "Soybean-clean", "Wheat", "Woods", "Buildings-Grass-Trees-Drives", "Stone-Steel-Towers",
        ),  # fmt: skip
        urls={
            "Indian_pines_corrected.mat": (
                *_ehu("6/67/Indian_pines_corrected.mat"),
                f"{_HF_INDIAN_PINES}/Indian_pines_corrected.mat",
            ),
            "Indian_pines_gt.mat": (*_ehu("c/c4/Indian_pines_gt.mat"), f"{_HF_INDIAN_PINES}/Indian_pines_gt.mat"),
        },
        sha256={
            "Indian_pines_corrected.mat": "ec2f8808710919d566f70f0d4aa885aae1ddfd42b734aba71c5e12ca65450939",
            "Indian_pines_gt.mat": "65c4687a8ab04f6da4789799bc3bc4f6e88bccac3ed6a2e6ae367e5e6b9e429c",
        },
        cube_shape=(145, 145, 200),
        rgb_bands=(43, 21, 11),
        palette=PALETTE[:16],
        citation=(
            "Baumgardner, M. F., Biehl, L. L., Landgrebe, D. A. (2015). 220 Band AVIRIS Hyperspectral Image "
            "Data Set: June 12, 1992 Indian Pine Test Site 3. Purdue University Research Repository. "
            "doi:10.4231/R7RX991C"
        ),
    ),
    DatasetSpec(
        name="salinas_a",
        display_name="Salinas-A",
        folder="salinas_a",
        cube_file="SalinasA_corrected.mat",
        gt_file="SalinasA_gt.mat",
        cube_key="salinasA_corrected",
        gt_key="salinasA_gt",
        class_ids=_SALINAS_A_IDS,
        class_names=tuple(_SALINAS_NAMES[i - 1] for i in _SALINAS_A_IDS),
        urls={
            "SalinasA_corrected.mat": _ehu("1/1a/SalinasA_corrected.mat"),
            "SalinasA_gt.mat": _ehu("a/aa/SalinasA_gt.mat"),
        },
        sha256={
            "SalinasA_corrected.mat": "d75684ed3ab71a1024cee0f9db9061f50a3523a92ff5edfbbb1eed976b9f1721",
            "SalinasA_gt.mat": "17814c1d3296c0e29b27f320f2c4174d2a68adb87e376abe78f02923e2c2e454",
        },
        cube_shape=(83, 86, 204),
        rgb_bands=(43, 21, 11),
        palette=tuple(PALETTE[i - 1] for i in _SALINAS_A_IDS),  # same colours as in the full Salinas scene
        citation=_AVIRIS_SALINAS + " (Salinas-A sub-scene)",
    ),
    DatasetSpec(
        name="salinas",
        display_name="Salinas",
        folder="salinas",
        cube_file="Salinas_corrected.mat",
        gt_file="Salinas_gt.mat",
        cube_key="salinas_corrected",
        gt_key="salinas_gt",
        class_ids=tuple(range(1, 17)),
        class_names=_SALINAS_NAMES,
        urls={
            "Salinas_corrected.mat": _ehu("a/a3/Salinas_corrected.mat"),
            "Salinas_gt.mat": _ehu("f/fa/Salinas_gt.mat"),
        },
        sha256={"Salinas_gt.mat": "ecfab4d31ef5553f097943235d8ea502038eb4a2067b2ad10b33e37c949955e2"},
        cube_shape=(512, 217, 204),
        rgb_bands=(43, 21, 11),
        palette=PALETTE[:16],
        citation=_AVIRIS_SALINAS,
    ),
    DatasetSpec(
        name="pavia_u",
        display_name="Pavia University",
        folder="pavia_u",
        cube_file="PaviaU.mat",
        gt_file="PaviaU_gt.mat",
        cube_key="paviaU",
        gt_key="paviaU_gt",
        class_ids=tuple(range(1, 10)),
        class_names=(
            "Asphalt", "Meadows", "Gravel", "Trees", "Painted metal sheets", "Bare Soil", "Bitumen",
            "Self-Blocking Bricks", "Shadows",
        ),  # fmt: skip
        urls={"PaviaU.mat": _ehu("e/ee/PaviaU.mat"), "PaviaU_gt.mat": _ehu("5/50/PaviaU_gt.mat")},
        sha256={"PaviaU_gt.mat": "23f6a426928f9b32984adffe659e29f554f9fb6c93b5a107528d308d5087a829"},
        cube_shape=(610, 340, 103),
        rgb_bands=(55, 41, 12),
        palette=PALETTE[:9],
        citation=(
            "ROSIS scene over the University of Pavia, courtesy of Prof. Paolo Gamba, Telecommunications and "
            f"Remote Sensing Laboratory, University of Pavia; distributed by the GIC, UPV/EHU: {_GIC_PAGE}"
        ),
    ),
    DatasetSpec(
        name="ksc",
        display_name="Kennedy Space Center",
        folder="ksc",
        cube_file="KSC.mat",
        gt_file="KSC_gt.mat",
        cube_key="KSC",
        gt_key="KSC_gt",
        class_ids=tuple(range(1, 14)),
        class_names=(
            "Scrub", "Willow swamp", "CP hammock", "Slash pine", "Oak/Broadleaf", "Hardwood", "Swamp",
            "Graminoid marsh", "Spartina marsh", "Cattail marsh", "Salt marsh", "Mud flats", "Water",
        ),  # fmt: skip
        urls={"KSC.mat": _ehu("2/26/KSC.mat"), "KSC_gt.mat": _ehu("a/a6/KSC_gt.mat")},
        sha256={"KSC_gt.mat": "a1d6ab9293691006bd4d9742d1a1e1c141b1aaa5fbc5fa128b33c1d09038510b"},
        cube_shape=(512, 614, 176),
        rgb_bands=(43, 21, 11),
        palette=PALETTE[:13],
        citation=(
            "AVIRIS scene over the Kennedy Space Center, Florida (1996); Center for Space Research, "
            f"University of Texas at Austin; distributed by the GIC, UPV/EHU: {_GIC_PAGE}"
        ),
    ),
    DatasetSpec(
        name="botswana",
        display_name="Botswana",
        folder="botswana",
        cube_file="Botswana.mat",
        gt_file="Botswana_gt.mat",
        cube_key="Botswana",
        gt_key="Botswana_gt",
        class_ids=tuple(range(1, 15)),
        class_names=(
            "Water", "Hippo grass", "Floodplain grasses 1", "Floodplain grasses 2", "Reeds", "Riparian",
            "Firescar", "Island interior", "Acacia woodlands", "Acacia shrublands", "Acacia grasslands",
            "Short mopane", "Mixed mopane", "Exposed soils",
        ),  # fmt: skip
        urls={"Botswana.mat": _ehu("7/72/Botswana.mat"), "Botswana_gt.mat": _ehu("5/58/Botswana_gt.mat")},
        sha256={"Botswana_gt.mat": "668394905e10e629c16584bfd02b0f533b96d6ba18a63274a94ff3a77126a887"},
        cube_shape=(1476, 256, 145),
        rgb_bands=(75, 33, 15),
        palette=PALETTE[:14],
        citation=(
            "NASA EO-1 Hyperion scene over the Okavango Delta, Botswana (2001); Center for Space Research, "
            f"University of Texas at Austin; distributed by the GIC, UPV/EHU: {_GIC_PAGE}"
        ),
    ),
)

#: Registry of the built-in scenes, keyed by ``DatasetSpec.name``.
DATASETS: Registry[DatasetSpec] = Registry("dataset")
for _spec in _SPECS:
    DATASETS.register(_spec.name, _spec, _spec.display_name)
del _spec


def get_spec(name: str) -> DatasetSpec:
    """Returns the built-in scene registered as ``name``.

    Args:
        name: registry key, e.g. ``"indian_pines"``.

    Returns:
        The scene's :class:`DatasetSpec`.

    Raises:
        UnknownNameError: no such scene; the message lists close names and all scenes.
    """
    return DATASETS.get(name)
