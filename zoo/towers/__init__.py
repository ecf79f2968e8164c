"""Towers: functions from one modality's input tensor to features, every layer named."""

from zoo.towers import audio, clip, image, pretrained, text

__all__ = ["audio", "clip", "image", "pretrained", "text"]
