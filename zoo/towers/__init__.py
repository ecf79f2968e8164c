"""Towers: functions from one modality's input tensor to features, every layer named."""

from zoo.towers import audio, image, pretrained, text

__all__ = ["audio", "image", "pretrained", "text"]
