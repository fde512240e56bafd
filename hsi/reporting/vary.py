"""What a repeat may vary between its runs: the one declaration of ``repeat --vary``.

Each choice says which of a run's two seeds follow the run's own seed ``s_k`` and how the
report names it. Planning (:mod:`hsi.experiments.repeat`), the stability report
(:mod:`hsi.reporting.stability_report`) and the CLI's choices and help all read :data:`VARY`;
``--vary all`` (:data:`ALL`) runs the three of them at once. It lives here, the lowest layer
that needs it, and imports nothing heavy, so the CLI can build ``--vary`` at start-up.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ALL", "VARY", "VARY_CHOICES", "Vary"]


@dataclass(frozen=True)
class Vary:
    """One ``--vary`` choice.

    Attributes:
        split: the train/test split (and the PCA fitted on it) follows each run's seed.
        init: initial weights, dropout and batch order follow each run's seed.
        words: what varied, in the report's titles ("... runs varying the split").
        help: one line for ``--help``.
    """

    split: bool
    init: bool
    words: str
    help: str


#: The ``--vary`` choices, in display order; the seed that does not vary stays at the base seed.
VARY: dict[str, Vary] = {
    "split": Vary(split=True, init=False, words="the split",
                  help="a new train/test split per run, the same initialisation"),
    "init": Vary(split=False, init=True, words="the initialisation",
                 help="the same split, new weights, dropout and batch order"),
    "both": Vary(split=True, init=True, words="split and initialisation",
                 help="everything, like independent `train --seed` runs (default)"),
}

#: ``--vary all``: every series of :data:`VARY` in one repeat folder, a run shared by series trained once.
ALL = "all"

#: Every ``--vary`` value with its ``--help`` line, in display order.
VARY_CHOICES: dict[str, str] = {
    **{name: choice.help for name, choice in VARY.items()},
    ALL: "split, init and both in one command (a run they share is trained once); the report opens with "
         "which source dominates",
}
