"""The paper's twenty datasets (Table 7), registered as D1..D20.

D11..D16 are MedMNIST v2 files read with the ``medmnist`` package; D1..D10 are
read from an image folder in the layout of their public release; D17..D20 are
segmentation sets, registered so that their cards are visible, and refused by
the loader until segmentation is supported.

Channel policy (pinned per dataset, recorded with every result): MedMNIST
files keep their native channels (1 for grey, 3 for colour); folder datasets
are read as RGB, as the paper feeds 128x128x3 images.
"""

from __future__ import annotations

from robustbench_med.data.spec import DatasetSpec
from robustbench_med.registry import DATASETS

MEDMNIST_URL = "https://zenodo.org/records/10519652"
MEDMNIST_LICENCE = "CC BY 4.0 (MedMNIST v2; cite Yang et al. 2023 and the source dataset)"
SPLIT_801010 = "80/10/10 (stratified, seed 0)"


def _register(spec: DatasetSpec) -> None:
    DATASETS.add(spec.id, spec, aliases=(spec.medmnist_flag,) if spec.medmnist_flag else (),
                 origin="medrobust")


def _folder(id: str, name: str, modality: str, classes: tuple[str, ...], n: int, url: str,
            licence: str, folder: str, pattern: str = "*", split: str = SPLIT_801010,
            note: str = "") -> DatasetSpec:
    class_dirs = "{" + ",".join(classes) + "}"
    layout = f"<data-root>/{folder}/.../{class_dirs}/{pattern} (class folders at any depth)"
    if note:
        layout += f"; {note}"
    return DatasetSpec(
        id=id, name=name, modality=modality, task="binary" if len(classes) == 2 else "multiclass",
        n_classes=len(classes), n_samples=n, split=split, source_url=url, licence=licence,
        layout=layout, channels=3, class_names=classes, source="folder", folder=folder, pattern=pattern,
    )


def _medmnist(id: str, flag: str, name: str, modality: str, task: str, classes: tuple[str, ...],
              n: int, split: str, channels: int) -> DatasetSpec:
    return DatasetSpec(
        id=id, name=name, modality=modality, task=task, n_classes=len(classes), n_samples=n,
        split=split, source_url=f"{MEDMNIST_URL}/files/{flag}.npz", licence=MEDMNIST_LICENCE,
        layout=f"<data-root>/medmnist/{flag}.npz (the official 28x28 MedMNIST v2 file)",
        channels=channels, class_names=classes, source="medmnist", medmnist_flag=flag,
    )


def _segmentation(id: str, name: str, modality: str, n: int | None, split: str, url: str,
                  licence: str) -> DatasetSpec:
    return DatasetSpec(
        id=id, name=name, modality=modality, task="segmentation", n_classes=None, n_samples=n,
        split=split, source_url=url, licence=licence,
        layout="segmentation masks; not supported yet", source="unsupported",
    )


for _spec in (
    _folder("d1", "Nickparvar brain tumour MRI", "MRI",
            ("glioma", "meningioma", "notumor", "pituitary"), 7023,
            "https://www.kaggle.com/datasets/masoudnickparvar/brain-tumor-mri-dataset",
            "CC0 1.0 (as stated on the Kaggle page)", "brain-tumor-mri-dataset",
            note="Training/ and Testing/ are pooled, then split"),
    _folder("d2", "IQ-OTHNCCD lung cancer", "CT",
            ("Bengin cases", "Malignant cases", "Normal cases"), 1098,
            "https://data.mendeley.com/datasets/bhmdr45bh2", "CC BY 4.0 (Mendeley Data)",
            "The IQ-OTHNCCD lung cancer dataset"),
    _folder("d3", "Tuberculosis chest X-ray (Kaggle TB database)", "CXR",
            ("Normal", "Tuberculosis"), 4200,
            "https://www.kaggle.com/datasets/tawsifurrahman/tuberculosis-tb-chest-xray-dataset",
            "as stated on the Kaggle page (cite Rahman et al., IEEE Access 2020)",
            "TB_Chest_Radiography_Database", pattern="*.png"),
    _folder("d4", "BCCD blood cells", "microscopy",
            ("EOSINOPHIL", "LYMPHOCYTE", "MONOCYTE", "NEUTROPHIL"), 9957,
            "https://www.kaggle.com/datasets/paultimothymooney/blood-cells",
            "MIT (BCCD dataset)", "dataset2-master/dataset2-master/images/TRAIN", pattern="*.jpeg"),
    DatasetSpec(
        id="d5", name="HAM10000", modality="dermoscopy", task="multiclass", n_classes=7,
        n_samples=10015, split=SPLIT_801010, source_url="https://doi.org/10.7910/DVN/DBW86T",
        licence="CC BY-NC 4.0 (Harvard Dataverse)",
        layout="<data-root>/HAM10000/HAM10000_metadata.csv (columns image_id, dx) and "
               "<data-root>/HAM10000/**/<image_id>.jpg",
        channels=3, class_names=("akiec", "bcc", "bkl", "df", "mel", "nv", "vasc"),
        source="csv", folder="HAM10000", csv=("HAM10000_metadata.csv", "image_id", "dx"),
    ),
    _folder("d6", "SIPaKMeD", "cytology",
            ("im_Dyskeratotic", "im_Koilocytotic", "im_Metaplastic", "im_Parabasal",
             "im_Superficial-Intermediate"), 4049,
            "https://www.cs.uoi.gr/~marina/sipakmed.html",
            "research use with citation (Plissiti et al., ICIP 2018)", "sipakmed",
            pattern="CROPPED/*.bmp"),
    _folder("d7", "CRC colorectal histology (Kather 2016)", "H&E",
            ("01_TUMOR", "02_STROMA", "03_COMPLEX", "04_LYMPHO", "05_DEBRIS", "06_MUCOSA",
             "07_ADIPOSE", "08_EMPTY"), 5000, "https://zenodo.org/records/53169", "CC BY 4.0",
            "Kather_texture_2016_image_tiles_5000", pattern="*.tif"),
    _folder("d8", "C-NMC 2019 leukaemia", "microscopy", ("all", "hem"), 15114,
            "https://doi.org/10.7937/tcia.2019.dc64i46r", "CC BY 3.0 (TCIA)", "C-NMC_Leukemia",
            pattern="*.bmp", split="10661/1867/2586 (official; train/ val/ test/ subfolders)",
            note="put the official splits in train/, val/ and test/ subfolders"),
    _folder("d9", "Kvasir v2", "endoscopy",
            ("dyed-lifted-polyps", "dyed-resection-margins", "esophagitis", "normal-cecum",
             "normal-pylorus", "normal-z-line", "polyps", "ulcerative-colitis"), 4000,
            "https://datasets.simula.no/kvasir/", "research and education use with citation",
            "kvasir-dataset-v2", pattern="*.jpg"),
    _folder("d10", "CBIS-DDSM", "mammography", ("BENIGN", "MALIGNANT"), 10239,
            "https://doi.org/10.7937/K9/TCIA.2016.7O02S9CY", "CC BY 3.0 (TCIA)", "CBIS-DDSM",
            pattern="*.png", note="DICOMs converted to PNG, one folder per pathology"),
    _medmnist("d11", "pathmnist", "PathMNIST", "histology", "multiclass",
              ("adipose", "background", "debris", "lymphocytes", "mucus", "smooth muscle",
               "normal colon mucosa", "cancer-associated stroma", "colorectal adenocarcinoma"),
              107180, "89996/10004/7180 (MedMNIST)", 3),
    _medmnist("d12", "pneumoniamnist", "PneumoniaMNIST", "CXR", "binary",
              ("normal", "pneumonia"), 5856, "4708/524/624 (MedMNIST)", 1),
    _medmnist("d13", "retinamnist", "RetinaMNIST", "fundus", "ordinal",
              ("grade 0", "grade 1", "grade 2", "grade 3", "grade 4"), 1600,
              "1080/120/400 (MedMNIST)", 3),
    _medmnist("d14", "breastmnist", "BreastMNIST", "ultrasound", "binary",
              ("malignant", "normal or benign"), 780, "546/78/156 (MedMNIST)", 1),
    _medmnist("d15", "tissuemnist", "TissueMNIST", "microscopy", "multiclass",
              tuple(f"type {i}" for i in range(8)), 236386, "165466/23640/47280 (MedMNIST)", 1),
    _medmnist("d16", "organamnist", "OrganAMNIST", "CT", "multiclass",
              tuple(f"organ {i}" for i in range(11)), 58830, "34561/6491/17778 (MedMNIST)", 1),
    _segmentation("d17", "Kvasir-SEG", "endoscopy", 1000, "80/10/10",
                  "https://datasets.simula.no/kvasir-seg/", "research and education use"),
    _segmentation("d18", "ISIC 2018", "dermoscopy", 2594, "2075/519",
                  "https://challenge.isic-archive.com/data/#2018", "CC BY-NC 4.0"),
    _segmentation("d19", "BraTS 2020", "MRI", 369, "201/35/133",
                  "https://www.med.upenn.edu/cbica/brats2020/", "BraTS data use agreement"),
    _segmentation("d20", "LiTS", "CT", None, "-", "https://competitions.codalab.org/competitions/17094",
                  "CC BY-NC-ND 4.0"),
):
    _register(_spec)
