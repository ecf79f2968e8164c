"""Towers: functions from one modality's input tensor to features, every layer named."""

from zoo.towers import audio, image, text

__all__ = ["audio", "image", "text"]
