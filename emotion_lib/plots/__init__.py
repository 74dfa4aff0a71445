"""Plots for the notebooks and reports: data, features, augmentation, evaluation."""

from emotion_lib.plots.evaluation import plot_attention, plot_confusion, plot_confusion_grid, plot_confusion_pair
from emotion_lib.plots.figures import save_figure

__all__ = ["plot_attention", "plot_confusion", "plot_confusion_grid", "plot_confusion_pair", "save_figure"]
