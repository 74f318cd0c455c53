"""Dense (fully connected) layer."""
from .base import Layer
from ..init import get_initialiser


class Dense(Layer):
    """y = x W + b.

    .. math:: y = x W + b, \\quad g_W = x^T g_y, \\quad g_b = \\sum_n g_y, \\quad g_x = g_y W^T

    Shapes: x (N, I), W (I, O), b (O,), y (N, O).
    """

    kind = "dense"

    def __init__(self, in_features, out_features, init="glorot", bias=True):
        if int(in_features) < 1 or int(out_features) < 1:
            raise ValueError(f"Dense: sizes must be positive, got {in_features} -> {out_features}")
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.init = get_initialiser(init, "Dense")
        self.use_bias = bias

    def param_specs(self):
        specs = [("W", (self.in_features, self.out_features), self.init)]
        if self.use_bias:
            specs.append(("b", (self.out_features,), "zeros"))
        return specs

    def forward(self, x, train=True):
        self.check_input(x, 2, {1: self.in_features})
        xp = self.xp_of(x)
        self.x = x                                                  # (N, I)
        y = xp.matmul(x, self.W, out=self.buffer("y", (x.shape[0], self.out_features), x))
        if self.use_bias:
            y += self.b                                             # (N, O)
        return y

    def backward(self, gy):
        xp = self.xp_of(gy)
        xp.matmul(self.x.T, gy, out=self.gW)                        # g_W = x^T g_y
        if self.use_bias:
            gy.sum(axis=0, out=self.gb)                             # g_b = sum over the batch
        if not self.needs_gx:
            return None
        return xp.matmul(gy, self.W.T, out=self.buffer("gx", self.x.shape, gy))     # gy W^T

    def describe(self):
        return f"{self.in_features} -> {self.out_features}"
