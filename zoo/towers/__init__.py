"""Towers: functions from one modality's input tensor to features, every layer named."""

from zoo.towers import image, text

__all__ = ["image", "text"]
