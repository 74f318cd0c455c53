"""Layers with hand-written backward passes. Each: forward(x) keeps what backward(gy) needs."""
from .base import Layer
from .dense import Dense
from .activations import ReLU, Tanh, Flatten, Dropout
from .conv import Conv2D, MaxPool2D, im2col, col2im

__all__ = ["Layer", "Dense", "ReLU", "Tanh", "Flatten", "Dropout", "Conv2D", "MaxPool2D",
           "im2col", "col2im"]
