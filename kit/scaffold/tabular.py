"""A `TabularCompetition` declaration inferred from Kaggle's train / test / sample files.

The sample's first column is the id (checked against test), its other column the target (present in train,
absent in test); the target's values give the task, the sample's shape the submission kind; each column of both
train and test gets a role from its values, with the reason kept for the generated file's comment.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from kit.errors import DataError, KitError
from kit.features import FALSE_WORDS, TRUE_WORDS
from kit.io import show
from kit.scaffold.files import Table

REGRESSION_METRICS = ("rmse", "rmsle", "mae", "r2")
MULTILABEL_METRICS = ("f1_samples", "f2_samples")
MAX_CLASSES = 20  # an integer target with at most this many values is read as classes, more as numbers
HIGH_CARDINALITY = 20
# a text column with fewer than this many rows a value on average is an identifier (ticket, cabin, name), not a
# category: one-hot encoded, such columns cost kit's MLP 8 points of accuracy on Titanic-format data
# (bench/results/init.md)
ROWS_PER_VALUE = 3.0
DATE_RE = re.compile(r"^\d{4}[-/.]\d{1,2}[-/.]\d{1,2}([ T]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?$|"
                     r"^\d{1,2}[-/.]\d{1,2}[-/.]\d{4}( \d{1,2}:\d{2}(:\d{2})?)?$")
ROLES = ("numeric", "categorical", "boolean", "datetime", "left out", "dropped")


@dataclass
class Column:
    """One input column: its role (numeric, categorical, boolean, datetime, left out, dropped) and why."""

    name: str
    role: str
    why: str
    parts: tuple[str, ...] = ()  # datetime: the DateParts it becomes


@dataclass
class TabularSpec:
    """Everything the generated declaration says, each choice with its reason."""

    name: str
    slug: str
    task: str
    task_why: str
    metric: str
    metric_why: str
    id_col: str
    target_col: str
    target_why: str
    files: dict[str, str]  # role -> file name
    csv_options: dict[str, Any] = field(default_factory=dict)
    n_folds: int = 5
    folds_why: str = ""
    group_col: str | None = None
    columns: list[Column] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # said once when the folder is written

    def role(self, role: str) -> list[Column]:
        """The columns of one role, in file order."""
        return [c for c in self.columns if c.role == role]


# ---- values --------------------------------------------------------------------------------------------------
def _numbers(values: pd.Series) -> pd.Series | None:
    """The non-missing values as floats, or None when one is not a number."""
    v = values.dropna()
    if pd.api.types.is_bool_dtype(v) or (len(v) and v.map(lambda x: isinstance(x, (bool, np.bool_))).all()):
        return None  # True/False (with missing values pandas keeps Python bools): booleans, not numbers
    if pd.api.types.is_numeric_dtype(v):
        return v.astype("float64")
    num = pd.to_numeric(v, errors="coerce")
    return None if num.isna().any() else num.astype("float64")


def _first_text(values: pd.Series) -> Any:
    """A value that is not a number (for the message saying why a column is text)."""
    v = values.dropna()
    bad = pd.to_numeric(v, errors="coerce").isna()
    return v[bad].iloc[0] if bad.any() else None


def _integers(num: pd.Series) -> bool:
    return bool(len(num)) and bool(np.all(np.isfinite(num.to_numpy())) and (num % 1 == 0).all())


def _values(values: pd.Series, k: int = 3) -> str:
    uniq = pd.unique(values.dropna())[:k].tolist()
    return ", ".join(show(u) for u in uniq)


def _is_bool_words(values: pd.Series) -> bool:
    words = {str(v).strip().lower() for v in pd.unique(values.dropna())}
    return len(words) == 2 and bool(words & TRUE_WORDS) and bool(words & FALSE_WORDS)


def _date_parts(values: pd.Series) -> tuple[str, ...] | None:
    """DateParts for a column of dates (None when it is not one): year, month, day, weekday, and the hour when
    some value has a time of day."""
    text = values.dropna().astype(str).str.strip()
    if text.empty:
        return None
    head = text.iloc[:500]
    if head.str.match(DATE_RE).mean() < 0.95:
        return None
    when = pd.to_datetime(head, errors="coerce", format="mixed")
    if when.notna().mean() < 0.95:
        return None
    parts = ("year", "month", "day", "dayofweek")
    has_time = bool((when.dropna().dt.hour != 0).any() or (when.dropna().dt.minute != 0).any())
    return (*parts, "hour") if has_time else parts


# ---- column roles ----------------------------------------------------------------------------------------------
def column_role(name: str, train: pd.Series, test: pd.Series, train_file: str = "train", test_file: str = "test",
                ) -> Column:
    """The role of one input column from its values in train and test, with the reason."""
    n = len(train)
    both = pd.concat([train, test], ignore_index=True)
    distinct = train.nunique(dropna=True)
    if distinct == 0:
        return Column(name, "dropped", "empty in train -> dropped")
    if distinct == 1 and both.nunique(dropna=True) <= 1:
        missing = " (and missing)" if train.isna().any() else ""
        return Column(name, "dropped", f"one value {show(train.dropna().iloc[0])}{missing} -> constant, dropped")
    num_tr, num_te = _numbers(train), _numbers(test)
    if num_tr is None and _is_bool_words(both):
        return Column(name, "boolean", f"{distinct} values ({_values(both)}) -> boolean, 0/1")
    if num_tr is not None and num_te is not None:
        full_unique = distinct == n and not train.isna().any()
        ints = _integers(num_tr)
        if full_unique and ints and num_tr.max() - num_tr.min() + 1 == n:
            return Column(name, "left out", "consecutive integers, unique per row -> id-like, left out")
        if full_unique and ints and re.search(r"(^|_)id$|id$", name, flags=re.I) is not None:
            return Column(name, "left out", "integers unique per row, named like an id -> id-like, left out")
        if distinct == 2 and set(num_tr.unique()) <= {0.0, 1.0}:
            return Column(name, "numeric", "0/1 -> boolean, numeric")
        return Column(name, "numeric", f"numbers ({distinct} distinct) -> numeric")
    if (num_tr is None) != (num_te is None) and (num_tr is not None or num_te is not None):
        where, col = (test_file, test) if num_tr is not None else (train_file, train)
        why = f"numbers, but {where} has text ({show(_first_text(col))})"
    else:
        why = f"{distinct} text values"
    parts = _date_parts(both)
    if parts is not None:
        return Column(name, "datetime", f"dates ({_values(train, 1)}) -> {', '.join(parts)}", parts)
    text = train.dropna().astype(str)
    words = float(text.str.split().str.len().mean())
    length = float(text.str.len().mean())
    if distinct >= 0.5 * train.notna().sum() and (words >= 5 or length >= 60):
        return Column(name, "left out", f"free text ({words:.1f} words, {length:.0f} characters on average) -> "
                                        "left out (a feature step could extract from it)")
    present = int(train.notna().sum())
    if distinct == present and present >= max(20, n // 2):
        rows = "unique per row" if present == n else f"unique per row that has one ({present} of {n})"
        return Column(name, "left out", f"{why}, {rows} -> id-like, left out")
    if present >= 100 and present < ROWS_PER_VALUE * distinct:
        return Column(name, "left out", f"{why}, {present / distinct:.1f} rows a value -> nearly unique, id-like, "
                                        "left out")
    if distinct > HIGH_CARDINALITY:
        return Column(name, "categorical", f"{why}, {distinct / max(1, train.notna().sum()):.0%} of its rows "
                                           "distinct -> categorical (high cardinality)")
    return Column(name, "categorical", f"{why} -> categorical")


# ---- id, target, task, metric ------------------------------------------------------------------------------------
def _check_unique(table: Table, col: str) -> None:
    dup = table.frame[col].duplicated()
    if dup.any():
        i = int(dup.to_numpy().argmax())
        raise DataError(f"{table.path}: row {i + 2}, column {col}: id {show(table.frame[col].iloc[i])} repeated")


def find_id(train: Table, test: Table, sample: Table, id_col: str | None) -> tuple[str, str]:
    """The id column (the sample's first, unless given) and why; refuses a sample whose ids are not test's."""
    col = id_col or str(sample.frame.columns[0])
    why = "--id" if id_col else f"{sample.path.name}'s first column"
    for t in (sample, test, train):
        if col not in t.frame.columns:
            extra = " (kit's tabular loader reads it there too)" if t is train else ""
            raise DataError(f"{t.path}: no column {col!r}, {why}{extra}; columns {list(t.frame.columns)[:8]}")
    _check_unique(test, col)
    _check_unique(train, col)
    test_ids = set(test.frame[col].astype(str))
    missing = ~sample.frame[col].astype(str).isin(test_ids)
    if missing.any():
        i = int(missing.to_numpy().argmax())
        raise DataError(f"{sample.path}: row {i + 2}, column {col}: id {show(sample.frame[col].iloc[i])} is not in "
                        f"{test.path.name} ({int(missing.sum())} of {len(missing)} sample ids are not): the sample's "
                        "ids must be test's")
    return col, why


def find_target(train: Table, test: Table, sample: Table, id_col: str, targets: list[str] | None
                ) -> tuple[str, str, bool]:
    """(target column, why, wide): the sample's other column, or the train column whose values are the sample's
    columns (one probability column per class: wide)."""
    sample_cols = [str(c) for c in sample.frame.columns if c != id_col]
    if targets:
        if len(targets) > 1:
            raise KitError(f"--target {' '.join(targets)}: kit's tabular competitions take one target column")
        col, why = targets[0], "--target"
    else:
        in_train = [c for c in sample_cols if c in train.frame.columns]
        if len(sample_cols) == 1 and in_train:
            col, why = sample_cols[0], "the sample's other column"
        elif len(sample_cols) > 1 and len(in_train) > 1:
            raise KitError(f"{sample.path}: {len(in_train)} target columns ({', '.join(in_train[:5])}): kit's tabular "
                           "competitions take one target column; pass --target COL for one of them")
        else:
            names = set(sample_cols)
            candidates = [c for c in train.frame.columns if c not in test.frame.columns and c != id_col
                          and len(names) > 1 and set(train.frame[c].dropna().astype(str).unique()) <= names]
            if len(candidates) != 1:
                got = f"{len(candidates)} train columns could be it" if candidates else "no train column holds them"
                raise DataError(f"{sample.path}: cannot tell the target: the sample's column(s) "
                                f"{', '.join(sample_cols[:5])} are not in {train.path.name} as one target and "
                                f"{got}; pass --target COL")
            col, why = candidates[0], f"its values are {sample.path.name}'s columns (one per class)"
    if col not in train.frame.columns:
        raise DataError(f"{train.path}: no target column {col!r} ({why})")
    if col in test.frame.columns:
        raise DataError(f"{test.path}: column {col}: the target ({why}) is in the test file too; pass --target COL "
                        "if another column is the target")
    wide = col not in sample_cols
    return col, why, wide


def infer_task(values: pd.Series, where: str, sample_values: pd.Series | None, wide: bool,
               metric: str | None, task: str | None) -> tuple[str, str]:
    """(task, why) from the target's values, the sample's shape and a given metric or task."""
    na = values.isna()
    if na.any():
        i = int(na.to_numpy().argmax())
        raise DataError(f"{where}: row {i + 2}, column {values.name}: missing target")
    distinct = values.nunique()
    if distinct < 2:
        raise DataError(f"{where}: column {values.name}: the target has one value only ({show(values.iloc[0])}): "
                        "nothing to learn")
    if task:
        return task, "--task"
    num = _numbers(values)
    if wide:
        return "multiclass", f"{distinct} classes, one probability column each in the sample"
    if metric in REGRESSION_METRICS:
        if num is None:
            raise DataError(f"{where}: column {values.name}: --metric {metric} scores numbers but the target has "
                            f"text ({show(_first_text(values))})")
        return "regression", f"numbers, scored by {metric}"
    if metric in MULTILABEL_METRICS:
        return "multilabel", f"tags, scored by {metric}"
    if num is not None:
        sample_num = _numbers(sample_values) if sample_values is not None else None
        fractional_sample = sample_num is not None and not _integers(sample_num)
        if _integers(num) and distinct == 2:
            return "binary", f"2 values ({_values(values)})"
        if _integers(num) and distinct <= MAX_CLASSES and not fractional_sample:
            return "multiclass", (f"{distinct} integer values ({_values(values)}, ...) -> classes (pass --task "
                                  "regression if they are amounts)")
        if _integers(num) and metric is not None:
            return "multiclass", f"{distinct} integer values, scored by {metric} -> classes"
        if metric is not None:
            raise DataError(f"{where}: column {values.name}: --metric {metric} scores classes but the target holds "
                            f"{distinct} numbers ({_values(values)}, ...)")
        return "regression", f"numbers ({distinct} distinct)"
    text = values.astype(str)
    tokens = text.str.split()
    several = float((tokens.str.len() > 1).mean())
    vocab = set().union(*tokens.map(set)) if len(tokens) else set()
    if several >= 0.05 and len(vocab) < distinct and len(vocab) <= 1000:
        return "multilabel", f"space-separated tags ({len(vocab)} tags, {several:.0%} of rows have several)"
    if distinct == 2:
        return "binary", f"2 values ({_values(values)})"
    return "multiclass", f"{distinct} text values ({_values(values)}, ...)"


def default_metric(task: str, sample_values: pd.Series | None, wide: bool) -> tuple[str, str]:
    """The metric when none is given or known: the sample's kind decides between labels and probabilities."""
    from kit import tasks

    if wide:
        return "logloss", "the sample asks for class probabilities: log loss"
    if task == "binary" and sample_values is not None:
        num = _numbers(sample_values)
        if num is not None and len(num) and not set(num.unique()) <= {0.0, 1.0}:
            return "auc", f"the sample holds probabilities ({_values(sample_values, 1)}): AUC"
    name = tasks.get(task).default_metric
    return name, f"the {task} task's default"


def check_metric(metric: str, task: str, wide: bool, where: str) -> None:
    """Refuse a metric the task and the sample cannot be scored with (a one-line KitError)."""
    from kit import metrics

    m = metrics.get(metric)
    if task == "regression" and metric not in REGRESSION_METRICS:
        raise KitError(f"metric {metric} scores classes, but the task is regression")
    if task != "regression" and metric in REGRESSION_METRICS:
        raise KitError(f"metric {metric} scores numbers, but the task is {task}")
    if metric in MULTILABEL_METRICS and task != "multilabel":
        raise KitError(f"metric {metric} scores tags per row, but the task is {task}")
    if task == "multiclass" and m.takes_probs and not wide:
        raise DataError(f"{where}: {metric} needs a probability column per class, but the sample has one target "
                        "column; pick a label metric (accuracy, f1_macro) or check the sample")


def task_and_metric(values: pd.Series, where: str, sample_where: str, sample_values: pd.Series | None, wide: bool,
                    metric: str | None, task: str | None, kaggle_metric: str | None, kaggle_note: str,
                    notes: list[str]) -> tuple[str, str, str, str]:
    """(task, metric, why the task, why the metric): `metric`, else Kaggle's (mapped), else the task's default;
    what was not used is added to `notes`."""
    from kit.scaffold.kaggle_metrics import kit_metric

    metric_why = ""
    chosen = metric
    if chosen is not None:
        metric_why = f"--metric {chosen}"
    elif kaggle_metric:
        mapped = kit_metric(kaggle_metric)
        if mapped is not None:
            chosen, metric_why = mapped, f"Kaggle's evaluation metric {kaggle_metric!r}"
        else:
            notes.append(f"Kaggle's metric {kaggle_metric!r} is not one kit scores: using the task's default "
                         "(declare a kit.metrics.Metric in the folder to score it)")
    elif kaggle_note:
        notes.append(kaggle_note)
    kind, task_why = infer_task(values, where, sample_values, wide, chosen, task)
    if chosen is None:
        chosen, metric_why = default_metric(kind, sample_values, wide)
        notes.append(f"metric {chosen}: {metric_why} (pass --metric to choose)")
    check_metric(chosen, kind, wide, sample_where)
    return kind, chosen, task_why, metric_why


def check_choices(metric: str | None, task: str | None) -> str | None:
    """A given task and metric checked (one-line KitError); the metric's canonical name."""
    from kit import metrics

    if task is not None and task not in ("binary", "multiclass", "multilabel", "regression"):
        raise KitError(f"--task {task}: one of binary, multiclass, multilabel, regression")
    if metric is not None:
        metrics.get(metric)  # unknown: one line listing the names
        metric = metrics.ALIASES.get(metric, metric)
    return metric


def infer(name: str, slug: str, tables: dict[str, Table], *, targets: list[str] | None = None,
          metric: str | None = None, task: str | None = None, id_col: str | None = None, group: str | None = None,
          kaggle_metric: str | None = None, kaggle_note: str = "", n_folds: int = 5) -> TabularSpec:
    """The declaration for Kaggle's files `tables` ('train', 'test', 'sample'); one-line errors for files that
    contradict each other."""
    from kit import tasks

    train, test, sample = tables["train"], tables["test"], tables["sample"]
    notes = [n for t in tables.values() for n in t.notes]
    options = {k: v for t in tables.values() for k, v in t.options.items()}
    if len({tuple(sorted(t.options.items())) for t in tables.values()}) > 1:
        raise DataError(f"{train.path.parent}: the files are written differently ("
                        + "; ".join(f"{t.path.name}: {t.options or 'commas, UTF-8'}" for t in tables.values())
                        + "); kit reads all three with the same options")
    metric = check_choices(metric, task)
    idc, id_why = find_id(train, test, sample, id_col)
    target, target_why, wide = find_target(train, test, sample, idc, targets)
    sample_values = None if wide else sample.frame[target]
    where = str(train.path)

    kind, chosen, task_why, metric_why = task_and_metric(train.frame[target], where, str(sample.path), sample_values,
                                                         wide, metric, task, kaggle_metric, kaggle_note, notes)
    tasks.get(kind).encode(train.frame[target].reset_index(drop=True), where)  # the loader's own checks

    if group is not None and group not in train.frame.columns:
        raise KitError(f"--group {group}: not a column of {train.path.name}")
    extra = [c for c in test.frame.columns if c not in train.frame.columns]
    if extra:
        notes.append(f"{test.path.name} has column(s) not in {train.path.name}: {', '.join(map(str, extra[:5]))}"
                     f"{' ...' if len(extra) > 5 else ''} (ignored)")
    columns: list[Column] = []
    for c in train.frame.columns:
        if c in (idc, target):
            continue
        if c == group:
            columns.append(Column(c, "left out", "--group: the folds' groups, not a feature"))
        elif c not in test.frame.columns:
            columns.append(Column(c, "left out", f"not in {test.path.name}"))
        else:
            columns.append(column_role(c, train.frame[c], test.frame[c], train.path.name, test.path.name))
    if not [c for c in columns if c.role not in ("left out", "dropped")]:
        raise DataError(f"{train.path}: no column to learn from (every column is the id, the target, left out or "
                        "constant)")
    folds = {"binary": "stratified", "multiclass": "stratified", "multilabel": "multilabel-stratified",
             "regression": "shuffled k-fold"}[kind]
    folds_why = f"grouped by {group} (--group)" if group else f"{folds} ({kind})"
    return TabularSpec(
        name=name, slug=slug, task=kind, task_why=f"{q(target)}: {task_why}", metric=chosen, metric_why=metric_why,
        id_col=idc, target_col=target, target_why=f"id: {id_why}; target: {target_why}",
        files={r: t.path.name for r, t in tables.items()}, csv_options=options, n_folds=n_folds,
        folds_why=folds_why, group_col=group, columns=columns, notes=notes)


# ---- the source text -------------------------------------------------------------------------------------------
def class_name(name: str) -> str:
    """'my-comp_2' -> 'MyComp2' (a valid class name)."""
    cls = "".join(p[:1].upper() + p[1:] for p in re.split(r"[^A-Za-z0-9]+", name) if p)
    return cls if cls and not cls[0].isdigit() else f"Comp{cls}"


def q(value: Any) -> str:
    """A Python literal in double quotes (as ruff's formatter writes them): strings, lists, dicts of strings."""
    return json.dumps(value, ensure_ascii=False) if isinstance(value, (str, list, tuple)) else repr(value)


def _list(attr: str, names: list[str], indent: str = "    ", width: int = 116) -> list[str]:
    """`attr = [...]`, wrapped at `width`."""
    items = [q(str(n)) for n in names]
    one = f"{indent}{attr} = [{', '.join(items)}]"
    if len(one) <= width:
        return [one]
    lines, line = [f"{indent}{attr} = ["], indent + "    "
    for it in items:
        if len(line) + len(it) + 2 > width and line.strip():
            lines.append(line.rstrip())
            line = indent + "    "
        line += it + ", "
    lines.append(line.rstrip())
    lines.append(f"{indent}]")
    return lines


def _with_comment(lines: list[str], comment: str, width: int = 120) -> list[str]:
    """`lines` with `# comment` after a one-line declaration, or above a longer one."""
    if len(lines) == 1 and len(lines[0]) + len(comment) + 4 <= width:
        return [f"{lines[0]}  # {comment}"]
    return [f"    # {comment}", *lines]


def _commented(attr: str, cols: list[tuple[str, str]], indent: str = "    ") -> list[str]:
    """`attr = [` one column a line with its reason `]`."""
    if not cols:
        return [f"{indent}{attr} = []"]
    out = [f"{indent}{attr} = ["]
    for name, why in cols:
        out.append(f"{indent}    {q(name)},  # {why}")
    out.append(f"{indent}]")
    return out


def docstring_head(text: str, width: int = 116) -> list[str]:
    """A module docstring's first paragraph, opening quotes included, wrapped to fit."""
    import textwrap

    lines = textwrap.wrap(text.replace('"' * 3, "'" * 3), width - 3)
    return ['"' * 3 + lines[0], *lines[1:]]


def fit_lines(text: str, width: int = 120) -> str:
    """Lines over `width` (the project's line length) made to fit: a trailing `# comment` moves above its line,
    a long comment wraps; so a generated module passes `make lint` as it is."""
    import textwrap

    out: list[str] = []
    for line in text.split("\n"):
        if len(line) <= width:
            out.append(line)
            continue
        indent = line[: len(line) - len(line.lstrip())]
        code, sep, comment = line.partition("  # ")
        if sep and code.strip() and not code.lstrip().startswith("#"):
            body = [code.rstrip()]
        elif line.lstrip().startswith("#"):
            code, comment, body = "", line.strip().lstrip("#").strip(), []
        else:  # code or docstring text: left as it is (docstrings are wrapped where written)
            out.append(line)
            continue
        wrapped = textwrap.wrap(comment, width - len(indent) - 2) or [""]
        out += [f"{indent}# {w}" for w in wrapped] + body
    return "\n".join(out)


def render(spec: TabularSpec, when: str = "") -> str:
    """The competition module's source: the README template's declarations, each with why."""
    cls = class_name(spec.name)
    num = spec.role("numeric")
    cat = spec.role("categorical")
    boo = spec.role("boolean")
    dates = spec.role("datetime")
    out_cols = spec.role("left out") + spec.role("dropped")
    raw_numeric = [c.name for c in num]
    raw = [c.name for c in spec.columns if c.role in ("numeric", "categorical", "boolean", "datetime")]
    files = ", ".join(spec.files[r] for r in ("train", "test", "sample"))
    lines = [
        *docstring_head(f"{spec.name}: Kaggle's '{spec.slug}', declared by `kit init` from {files}{when}."),
        "",
        "Every choice below says why; edit any of them (it is your file now). The README's \"Adding a competition\"",
        "lists what else a competition can declare (model parameters, feature steps, a search space).",
        '"""',
        "",
        "from __future__ import annotations",
        "",
        "from typing import Any",
        "",
    ]
    if boo or dates:
        names = [n for n, used in (("Booleans", boo), ("DateParts", dates)) if used]
        lines.append(f"from kit.features import {', '.join(names)}")
    lines += ["from kit.tabular import TabularCompetition", "", "", f"class {cls}(TabularCompetition):",
              f"    name, slug = {q(spec.name)}, {q(spec.slug)}",
              f"    task = {q(spec.task)}  # {spec.task_why}",
              f"    metric = {q(spec.metric)}  # {spec.metric_why}",
              f"    # {spec.target_why}",
              f"    id_col, target_col = {q(spec.id_col)}, {q(spec.target_col)}",
              f"    train_file, test_file, sample_file = {q(spec.files['train'])}, {q(spec.files['test'])}, "
              f"{q(spec.files['sample'])}"]
    if spec.csv_options:
        opts = ", ".join(f"{q(k)}: {q(v)}" for k, v in spec.csv_options.items())
        lines.append(f"    csv_options = {{{opts}}}  # how the files are written (sniffed)")
    lines.append(f"    n_folds = {spec.n_folds}  # {spec.folds_why}")
    if spec.group_col:
        lines.append(f"    group_col = {q(spec.group_col)}  # --group: rows sharing it stay in one fold")
    lines += _with_comment(_list("raw_columns", raw), "must exist in train and test")
    lines += _with_comment(_list("raw_numeric", raw_numeric), "must parse as numbers (errors name file, row, column)")
    features = [(c.name, c.why) for c in num] + [(c.name, c.why) for c in boo]
    for c in dates:
        features += [(f"{c.name}_{part}", f"{q(c.name)}: {c.why}" if i == 0 else f"{q(c.name)}: {part}")
                     for i, part in enumerate(c.parts)]
    lines += _commented("numeric_features", features)
    lines += _commented("categorical_features", [(c.name, c.why) for c in cat])
    if out_cols:
        lines.append("    # not features (move one into a list above to use it):")
        lines += [f"    #   {q(c.name)}: {c.why}" for c in out_cols]
    if boo or dates:
        lines += ["", "    def feature_steps(self, params: dict[str, Any]) -> list:",
                  '        """Yes/no columns as 0/1 and dates as their parts, before the shared column pipeline."""',
                  "        return ["]
        if boo:
            lines.append(f'            ("booleans", Booleans({q([c.name for c in boo])})),')
        for c in dates:
            lines.append(f'            ({q("dates_" + c.name)}, DateParts({q([c.name])}, {q(list(c.parts))})),')
        lines.append("        ]")
    lines += ["", "", f"COMPETITION = {cls}()", ""]
    text = "\n".join(lines)
    if not (boo or dates):
        text = text.replace("from typing import Any\n\n", "")
    return fit_lines(text)
