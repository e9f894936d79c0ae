"""fastai callbacks for the tabular nets."""

from __future__ import annotations

from fastai.callback.tracker import TrackerCallback


class BestEpoch(TrackerCallback):
    """Keep the weights of the epoch with the best `monitor` (default the validation loss) and restore them
    when fitting ends; `chosen_epoch` says which (0-based). In memory, unlike fastai's SaveModelCallback, which
    writes a file per improvement into the Learner's path."""

    order = TrackerCallback.order + 1

    def __init__(self, monitor: str = "valid_loss") -> None:
        super().__init__(monitor=monitor)
        self.chosen_epoch = -1
        self.state = None

    def after_epoch(self) -> None:
        super().after_epoch()
        if self.new_best:
            self.chosen_epoch = self.epoch
            self.state = {k: v.detach().clone() for k, v in self.learn.model.state_dict().items()}

    def after_fit(self) -> None:
        if self.state is not None:
            self.learn.model.load_state_dict(self.state)
        super().after_fit()
