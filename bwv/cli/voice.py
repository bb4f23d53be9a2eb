"""`bwv voice ...`: train and evaluate the child-voice classifier; registered by bwv.cli.

Thin on purpose: options are parsed here, the work is one call into `ingest.voice.training.train`
(imported inside each command so `bwv --help` stays instant), and the figures it returns
are printed one per line so reviewers can grep for `utterance AUC` and `speaker AUC`.
"""

from __future__ import annotations

from pathlib import Path

import click

from bwv.cli.common import BwvGroup, emit_json, json_option

data_option = click.option(
    "--data",
    "data_dir",
    required=True,
    type=click.Path(path_type=Path),
    help="Folder with labels.csv (file,speaker,age; child means age 12 or under) "
    "and the audio files it lists.",
)


@click.group(cls=BwvGroup)
def voice() -> None:
    """Child-voice classifier: train it, or evaluate it on a labelled folder."""


@voice.command()
@data_option
@click.option(
    "--out",
    "out_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the classifier (JSON).",
)
@click.option("--folds", type=click.IntRange(min=2), default=5, show_default=True)
@click.option("--no-augment", is_flag=True, help="Train on clean audio only (no body-worn copies).")
@click.option(
    "--group-classifier",
    is_flag=True,
    help="Judge each speaker group by a classifier of its pooled features, not the mean of "
    "its segments' logits (an experiment: see the model card).",
)
def train(
    data_dir: Path, out_path: Path, folds: int, no_augment: bool, group_classifier: bool
) -> None:
    """Cross-validate by speaker, print the figures, and write the classifier."""
    from ingest.voice.training.train import TrainOptions, train

    options = TrainOptions(folds=folds, augment=not no_augment, group_classifier=group_classifier)
    result = train(data_dir, out_path, options, log=_progress)
    for line in result.lines():
        click.echo(line)


@voice.command()
@data_option
@click.option(
    "--model",
    "model_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Classifier JSON to score (default: the shipped one).",
)
@click.option(
    "--conversations",
    type=click.IntRange(min=0),
    default=100,
    show_default=True,
    help="Simulated 2-minute conversations of each kind (0: none).",
)
@click.option(
    "--wer",
    is_flag=True,
    help="Also transcribe every utterance and print the word error rate by age group "
    "(needs a text column in labels.csv; slow).",
)
@json_option
def evaluate(
    data_dir: Path, model_path: Path | None, conversations: int, wer: bool, as_json: bool
) -> None:
    """Score the classifier, unchanged, on a labelled folder of recordings."""
    from ingest.voice.training.evaluate import evaluate

    result = evaluate(data_dir, model_path, log=_progress, conversations=conversations, wer=wer)
    if as_json:
        emit_json(result.to_dict())
        return
    for line in result.lines():
        click.echo(line)


def _progress(message: str) -> None:
    click.echo(message, err=True)


COMMANDS: list[click.Command] = [voice]
