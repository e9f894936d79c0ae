"""An image competition's declaration inferred from Kaggle's files: which of kit.vision.declared's layouts the
folder holds (a labels CSV naming images, one sub-folder per class, pixel columns), its id, target, task and
metric, with the cpu / gpu presets written out to edit."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from kit.errors import DataError, KitError
from kit.io import read_csv
from kit.scaffold.files import ROLES, _stem, sniff
from kit.scaffold.tabular import check_choices, class_name, docstring_head, fit_lines, q, task_and_metric

# kit.vision.declared.IMAGE_SUFFIXES (not imported: it brings torch, and a table needs none)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp")

PIXEL_RE = re.compile(r"^(\D*?)(\d+)$")
FOLDS = {"binary": "stratified", "multiclass": "stratified", "multilabel": "multilabel-stratified",
         "regression": "shuffled k-fold"}


@dataclass
class VisionSpec:
    """What the generated image declaration says, each choice with its reason."""

    name: str
    slug: str
    layout: str  # "csv" | "folders" | "pixels"
    task: str
    task_why: str
    metric: str
    metric_why: str
    id_col: str
    target_col: str
    target_why: str
    files: dict[str, str]
    train_images: str = ""
    test_images: list[str] = field(default_factory=list)
    image_ext: str = ""
    label_col: str = ""
    pixel_prefix: str = ""
    side: int = 0
    sizes: str = ""
    notes: list[str] = field(default_factory=list)


# ---- what the folder holds ---------------------------------------------------------------------------------------
def _images(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]


def _class_dirs(folder: Path) -> list[Path]:
    return sorted(d for d in folder.iterdir() if d.is_dir() and _images(d))


def pixel_columns(columns: list[str]) -> tuple[str, int] | None:
    """(prefix, side) when the columns hold prefix0 .. prefix{side²-1} (side >= 8), else None."""
    groups: dict[str, set[int]] = {}
    for c in columns:
        m = PIXEL_RE.match(str(c))
        if m:
            groups.setdefault(m.group(1), set()).add(int(m.group(2)))
    for prefix, idx in groups.items():
        side = int(round(len(idx) ** 0.5))
        if side >= 8 and side * side == len(idx) and idx == set(range(len(idx))):
            return prefix, side
    return None


def detect(data_dir: Path) -> str | None:
    """'images' (folders of images), 'pixels' (pixel columns in the CSVs) or None (a table)."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        return None
    folders = [d for d in data_dir.iterdir() if d.is_dir() and not d.name.startswith(".")]
    if any(_images(d) or _class_dirs(d) for d in folders):
        return "images"
    train = next((p for p in data_dir.iterdir() if p.is_file() and _stem(p) in ROLES["train"]
                  and p.name.lower().endswith(".csv")), None)
    if train is not None:
        options, _ = sniff(train)
        header = list(pd.read_csv(train, nrows=0, **options).columns)
        if pixel_columns(header) is not None:
            return "pixels"
    return None


def _csvs(data_dir: Path) -> list[Path]:
    return sorted(p for p in data_dir.iterdir() if p.is_file() and _stem(p) is not None and p.suffix != ".parquet")


def _sample(data_dir: Path) -> Path:
    tables = _csvs(data_dir)
    hits = [p for p in tables if _stem(p) in ROLES["sample"]] or [
        p for p in tables if re.search(r"sample|submission", _stem(p) or "")]
    if len(hits) != 1:
        names = ", ".join(p.name for p in hits) or "none"
        raise DataError(f"{data_dir}: {'no' if not hits else 'more than one'} sample submission ({names}); kit "
                        "needs exactly one to know the test ids and the submission's columns")
    return hits[0]


def _ext(names: list[str]) -> str:
    common = Counter(Path(n).suffix for n in names).most_common(1)
    return common[0][0] if common else ".jpg"


def _missing_note(names: list[str], present: set[str], where: str, folder: str, first_row: int = 2) -> str | None:
    missing = [(i, n) for i, n in enumerate(names) if n not in present]
    if not missing:
        return None
    i, n = missing[0]
    return (f"{where}: row {i + first_row}: image {n!r} is not in {folder}/"
            f"{f' (and {len(missing) - 1} more)' if len(missing) > 1 else ''}: `kit train` stops on missing "
            "images unless --skip-bad-images (then they are left out of training / filled for test rows)")


# ---- inference ---------------------------------------------------------------------------------------------------
def infer_images(name: str, slug: str, data_dir: Path, *, targets: list[str] | None = None,
                 metric: str | None = None, task: str | None = None, id_col: str | None = None,
                 kaggle_metric: str | None = None, kaggle_note: str = "") -> VisionSpec:
    """A labels CSV + image folders, or one sub-folder per class, + a sample submission."""
    data_dir = Path(data_dir)
    metric = check_choices(metric, task)
    if targets and len(targets) > 1:
        raise KitError(f"--target {' '.join(targets)}: an image competition takes one target column")
    sample_path = _sample(data_dir)
    sample = read_csv(sample_path, dtype=str, keep_default_na=False)
    sid = id_col or str(sample.columns[0])
    if sid not in sample.columns:
        raise DataError(f"{sample_path}: no column {sid!r} (--id)")
    sample_cols = [c for c in sample.columns if c != sid]
    ids = sample[sid].tolist()
    folders = {d.name: d for d in sorted(data_dir.iterdir()) if d.is_dir() and not d.name.startswith(".")}
    direct = {n: _images(d) for n, d in folders.items()}
    classes = {n: _class_dirs(d) for n, d in folders.items()}
    notes: list[str] = []

    # the test folders: those holding the sample's images
    def holds(n: str, ext: str) -> int:
        names = {p.name for p in direct[n]}
        return sum(f"{i}{ext}" in names for i in ids[:2000])

    ext_guess = _ext([p.name for imgs in direct.values() for p in imgs])
    ext = "" if ids and Path(ids[0]).suffix.lower() in IMAGE_SUFFIXES else ext_guess
    test_dirs = [n for n in folders if direct[n] and holds(n, ext) > 0]
    if not test_dirs:
        raise DataError(f"{sample_path}: no folder of {data_dir} holds the sample's images (e.g. {ids[0]}{ext})")

    class_folder = next((n for n in folders if len(classes[n]) >= 2 and n not in test_dirs), None)
    labels_csv, labels = None, None
    if class_folder is None:
        train_dirs = [n for n in folders if direct[n] and n not in test_dirs]
        if len(train_dirs) != 1:
            raise DataError(f"{data_dir}: cannot tell the training images' folder: "
                            f"{', '.join(train_dirs) or 'no folder besides the test images'}")
        train_dir = train_dirs[0]
        present = {p.name for p in direct[train_dir]}
        for p in _csvs(data_dir):
            if p == sample_path:
                continue
            df = read_csv(p, dtype=str, keep_default_na=False)
            for c in df.columns:
                hit = df[c].head(200).map(lambda v: f"{v}{ext}" in present).mean()
                if hit >= 0.5:
                    labels_csv, labels, lid = p, df, c
                    break
            if labels_csv is not None:
                break
        if labels_csv is None:
            raise DataError(f"{data_dir}: no CSV names the images of {train_dir}/ (a labels file such as labels.csv "
                            f"with an id column)")
        if lid != sid:
            raise DataError(f"{labels_csv}: the images are named by column {lid!r}, the sample's ids by {sid!r}: "
                            "kit needs one id column name for both")
        if targets:
            target, why = targets[0], "--target"
        elif len(sample_cols) == 1 and sample_cols[0] in labels.columns:
            target, why = sample_cols[0], "the sample's other column"
        else:
            others = [c for c in labels.columns if c != lid]
            if len(others) != 1:
                raise DataError(f"{labels_csv}: cannot tell the target among {', '.join(others[:5])}; pass --target")
            target, why = others[0], f"{labels_csv.name}'s other column"
        if target not in labels.columns:
            raise DataError(f"{labels_csv}: no target column {target!r} ({why})")
        values = labels[target]
        names = [f"{i}{ext}" for i in labels[lid]]
        note = _missing_note(names, present, str(labels_csv), train_dir)
        where, layout, train_file = str(labels_csv), "csv", labels_csv.name
        n_train = len(labels)
    else:
        train_dir, lid = class_folder, sid
        target = targets[0] if targets else (sample_cols[0] if len(sample_cols) == 1 else "label")
        why = "one sub-folder per class"
        rows = [(d.name, p.name) for d in classes[class_folder] for p in _images(d)]
        values = pd.Series([r[0] for r in rows], name=target)
        note, where, layout, train_file = None, str(folders[class_folder]), "folders", class_folder
        n_train = len(rows)
        if len(classes[class_folder]) < 2:
            raise DataError(f"{folders[class_folder]}: one class folder only; nothing to learn")
    if note:
        notes.append(note)
    present_test = {p.name for d in test_dirs for p in direct[d]}
    test_note = _missing_note([f"{i}{ext}" for i in ids], present_test, str(sample_path), "/".join(test_dirs))
    if test_note:
        notes.append(test_note)
    dup = sample[sid].duplicated()
    if dup.any():
        i = int(dup.to_numpy().argmax())
        raise DataError(f"{sample_path}: row {i + 2}, column {sid}: id {sample[sid].iloc[i]!r} repeated")
    wide = len(sample_cols) > 1 and set(values.dropna().astype(str)) <= set(sample_cols)
    sample_values = None if wide or target not in sample.columns else sample[target]
    kind, chosen, task_why, metric_why = task_and_metric(values.rename(target), where, str(sample_path),
                                                         sample_values, wide, metric, task, kaggle_metric,
                                                         kaggle_note, notes)
    if kind == "regression":
        raise KitError("image regression (points, values) is not a layout kit init writes: write its load by hand")
    empty = values.astype(str).str.strip() == ""
    if kind != "multilabel" and empty.any():
        i = int(empty.to_numpy().argmax())
        raise DataError(f"{where}: row {i + 2}, column {target}: missing label")
    return VisionSpec(
        name=name, slug=slug, layout=layout, task=kind, task_why=f"{q(target)}: {task_why}", metric=chosen,
        metric_why=metric_why, id_col=sid, target_col=target,
        target_why=f"id: the sample's first column; target: {why}",
        files={"train": train_file, "test": test_dirs[0], "sample": sample_path.name}, train_images=train_dir,
        test_images=test_dirs, image_ext=ext, sizes=f"{n_train} training images, {len(ids)} test images",
        notes=notes)


def infer_pixels(name: str, slug: str, data_dir: Path, *, targets: list[str] | None = None,
                 metric: str | None = None, task: str | None = None, id_col: str | None = None,
                 kaggle_metric: str | None = None, kaggle_note: str = "") -> VisionSpec:
    """Pixel columns in train and test CSVs, the label in train only, a sample submission."""
    from kit.scaffold.files import find_files

    metric = check_choices(metric, task)
    files = find_files(data_dir)
    header = {r: [str(c).lstrip("\ufeff").strip() for c in pd.read_csv(p, nrows=0).columns] for r, p in files.items()}
    prefix, side = pixel_columns(header["train"])
    pixels = [f"{prefix}{i}" for i in range(side * side)]
    missing = [c for c in pixels if c not in header["test"]]
    if missing:
        raise DataError(f"{files['test']}: no pixel column {missing[0]} (train has {prefix}0..{prefix}"
                        f"{side * side - 1})")
    others = [c for c in header["train"] if c not in pixels and c not in header["test"]]
    if targets:
        label = targets[0]
    elif len(others) == 1:
        label = others[0]
    else:
        raise DataError(f"{files['train']}: cannot tell the label among {', '.join(others[:5]) or 'no column'} "
                        "(train's columns beside the pixels and not in test); pass --target")
    sample = read_csv(files["sample"])
    sid = id_col or str(sample.columns[0])
    sample_cols = [c for c in sample.columns if c != sid]
    target = sample_cols[0] if len(sample_cols) == 1 else label
    values = read_csv(files["train"], required=[label], usecols=[label])[label]
    notes: list[str] = []
    wide = len(sample_cols) > 1
    kind, chosen, task_why, metric_why = task_and_metric(values, str(files["train"]), str(files["sample"]),
                                                         None if wide else sample[target], wide, metric, task,
                                                         kaggle_metric, kaggle_note, notes)
    if sid not in header["test"]:
        n_test = sum(1 for _ in open(files["test"], "rb")) - 1
        if n_test != len(sample):
            raise DataError(f"{files['sample']}: {len(sample)} rows but {files['test'].name} has {n_test}: without "
                            f"an {sid} column in test, its rows are the sample's in order")
    return VisionSpec(
        name=name, slug=slug, layout="pixels", task=kind, task_why=f"{q(label)}: {task_why}", metric=chosen,
        metric_why=metric_why, id_col=sid, target_col=target,
        target_why=f"id: the sample's first column; label: {files['train'].name}'s column not in test",
        files={r: p.name for r, p in files.items()}, label_col=label, pixel_prefix=prefix, side=side,
        sizes=f"{len(pixels)} pixel columns {prefix}0..{prefix}{len(pixels) - 1} -> {side}x{side} grayscale",
        notes=notes)


# ---- the source text -----------------------------------------------------------------------------------------------
def render(spec: VisionSpec) -> str:
    """The competition module's source: a kit.vision.declared subclass, each choice with why."""
    from kit.vision.declared import PRESETS, PixelCsvCompetition

    base = {"csv": "ImageCsvCompetition", "folders": "ClassFolderCompetition", "pixels": "PixelCsvCompetition"}
    cls = class_name(spec.name)
    files = ", ".join(dict.fromkeys(spec.files.values()))
    lines = [
        *docstring_head(f"{spec.name}: Kaggle's '{spec.slug}', declared by `kit init` from {files}."),
        "",
        "Every choice below says why; edit any of them (it is your file now): the presets, the augmentation, or a",
        "`load` of your own (see kit.vision.declared for what this one reads).",
        '"""',
        "",
        "from __future__ import annotations",
        "",
        f"from kit.vision import Augment, {base[spec.layout]}",
        "",
        "",
        f"class {cls}({base[spec.layout]}):",
        f"    name, slug = {q(spec.name)}, {q(spec.slug)}",
        f"    task = {q(spec.task)}  # {spec.task_why}",
        f"    metric = {q(spec.metric)}  # {spec.metric_why}",
        f"    # {spec.target_why}",
        f"    id_col, target_col = {q(spec.id_col)}, {q(spec.target_col)}",
        f"    train_file, test_file, sample_file = {q(spec.files['train'])}, {q(spec.files['test'])}, "
        f"{q(spec.files['sample'])}",
    ]
    if spec.layout == "pixels":
        lines.append(f"    label_col, pixel_prefix, side = {q(spec.label_col)}, {q(spec.pixel_prefix)}, {spec.side}"
                     f"  # {spec.sizes}")
        aug = ("Augment(rotate=10.0, scale=0.1, translate=0.08)", "no flips: a mirrored digit is another one")
        presets = PixelCsvCompetition.presets
    else:
        test = q(spec.test_images[0]) if len(spec.test_images) == 1 else q(spec.test_images)
        lines.append(f"    train_images, test_images, image_ext = {q(spec.train_images)}, {test}, {q(spec.image_ext)}"
                     f"  # {spec.sizes}")
        aug = ("Augment(flip=True)", "a mirror keeps a photo's label (overhead images: vflip=True, rot90=True)")
        presets = PRESETS
    lines += [f"    n_folds = 5  # {FOLDS[spec.task]} ({spec.task})",
              f"    augmentation = {aug[0]}  # {aug[1]}",
              "    presets = {  # `--set preset=cpu|gpu` (auto: gpu when CUDA is there); any key also by --set"]
    for k, v in presets.items():
        declared = v if isinstance(v, dict) else {a: b for a, b in v.as_dict().items() if a in PRESETS[k]}
        items = [f"{q(a)}: {q(b)}" for a, b in declared.items()]
        line = f"        {q(k)}: {{"
        for j, it in enumerate(items):
            end = "}," if j == len(items) - 1 else ", "
            if len(line) + len(it) + len(end) > 116:
                lines.append(line.rstrip())
                line = "            "
            line += it + end
        lines.append(line)
    lines += ["    }", "", "", f"COMPETITION = {cls}()", ""]
    return fit_lines("\n".join(lines))
