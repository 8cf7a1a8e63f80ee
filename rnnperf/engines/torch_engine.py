"""``torch``: the peer a user would pick instead of a Theano-family library: ``torch.nn.RNN``,
``torch.nn.GRU`` or ``torch.nn.LSTM`` (``cell=``).

The seed's parameters map onto the module's (:mod:`rnnperf.model.spec` stacks them in torch's gate
order for this): ``weight_ih_l0 = Wxh``, ``weight_hh_l0 = Whh``, ``bias_ih_l0 = bh`` and a
``Linear(H, O)`` holding ``Why``/``by``. torch has a second bias, ``bias_hh_l0``, that the seed
folds into ``bh``; were it trained too, SGD would move the one sum twice. So:

* Elman and LSTM: ``bias_hh_l0`` is zero and frozen (``requires_grad=False``), so that it neither
  trains nor shows up as a parameter.
* GRU: ``b_hn`` cannot fold into ``bh`` (it sits inside ``r * (...)``), so it is the seed's
  ``bhn`` and lives in ``bias_hh_l0``'s ``n`` rows; that tensor trains, but a gradient hook on it
  zeroes its ``r, z`` rows, which therefore stay zero. The hook is one ``3H`` multiply per step
  and keeps the module's own weights (cuDNN's one flat buffer on a GPU) as they are.

Variable lengths go through ``pack_padded_sequence(enforce_sorted=False)`` and the module's
``h_n``: a packed sequence stops at its own length, which is the seed's "a finished state stops
changing". A batch whose sequences all have length ``T`` skips the packing (same numbers, the
plain cuDNN/MKL path).
"""

from __future__ import annotations

import numpy as np

from .. import cells
from .base import Engine, check_inputs, matmul_operands
from .devices import array_device
from .torch_runtime import configure_torch


class TorchEngine(Engine):
    """``torch.nn.RNN``/``GRU``/``LSTM`` and a ``Linear`` holding the seed's parameters."""

    @classmethod
    def import_libraries(cls, config):
        import torch  # noqa: F401

    def setup(self):
        import torch
        self.torch = torch
        self.device = configure_torch(self.config)  # Unavailable on cuda without CUDA
        self.tdtype = {"float32": torch.float32, "float64": torch.float64}[self.dtype.name]
        kw = {"device": self.device, "dtype": self.tdtype}
        cell = cells.get(self.cell)
        self.rnn = cell.torch_module(torch, self.n_in, self.n_hidden, **kw)
        self.out = torch.nn.Linear(self.n_hidden, self.n_out, **kw)
        bias_hh = self.rnn.bias_hh_l0
        with torch.no_grad():
            bias_hh.zero_()
        self.params = {"Wxh": self.rnn.weight_ih_l0, "Whh": self.rnn.weight_hh_l0,
                       "bh": self.rnn.bias_ih_l0, "Why": self.out.weight, "by": self.out.bias}
        #: the rows of its torch tensor each parameter is (all but the GRU's ``bhn``)
        self._rows = dict.fromkeys(self.params, slice(None))
        # the second bias: frozen at zero, or (GRU) holding the cell's own bias in some rows
        for name, rows in cell.torch_bias_hh(torch, bias_hh, self.n_hidden).items():
            self.params[name], self._rows[name] = bias_hh, rows
        self._plist = [self.params[k] for k in self.param_names]

    @classmethod
    def versions(cls):
        import torch
        out = {"torch": torch.__version__}
        if torch.cuda.is_available():
            out["cuda"] = str(torch.version.cuda)
            out["cudnn"] = str(torch.backends.cudnn.version())
        return out

    # --- parameters ------------------------------------------------------------------------------
    def set_params(self, params):
        with self.torch.no_grad():
            for k in self.param_names:
                self.params[k][self._rows[k]].copy_(self.torch.as_tensor(
                    np.asarray(params[k], dtype=self.dtype), device=self.device))

    def get_params(self):
        return {k: self._host(self.params[k][self._rows[k]]) for k in self.param_names}

    def device_actual(self):
        return array_device(self.rnn.weight_hh_l0)

    def _host(self, value) -> np.ndarray:
        return value.detach().cpu().numpy().astype(self.dtype, copy=True)

    # --- data: checked on the host, placed on the device once ------------------------------------
    def _place(self, x, y, lengths):
        """``(x (T,B,I), y (B,) | None, lengths on the CPU | None, single)`` as tensors."""
        x, y, lengths = check_inputs(x, y, lengths, self.n_in, self.n_out, self.dtype)
        torch = self.torch
        single = x.ndim == 2
        if single:
            x, y = x[:, None, :], (None if y is None else y[None])
        # pack_padded_sequence wants lengths on the CPU; all-full batches need no packing at all.
        packed_lengths = None
        if lengths is not None and int(lengths.min()) < x.shape[0]:
            packed_lengths = torch.as_tensor(lengths, dtype=torch.int64)
        xt = torch.as_tensor(x, device=self.device)
        yt = None if y is None else torch.as_tensor(y, dtype=torch.int64, device=self.device)
        return xt, yt, packed_lengths, single

    def _logits(self, xt, packed_lengths):
        if packed_lengths is not None:
            xt = self.torch.nn.utils.rnn.pack_padded_sequence(xt, packed_lengths,
                                                              enforce_sorted=False)
        _, h_n = self.rnn(xt)  # h_n: (1, B, H), in the caller's batch order
        if isinstance(h_n, tuple):
            h_n = h_n[0]       # an LSTM's (h_n, c_n)
        return self.out(h_n[0])

    def _loss(self, xt, yt, packed_lengths):
        return self.torch.nn.functional.cross_entropy(self._logits(xt, packed_lengths), yt)

    def _sgd(self, xt, yt, packed_lengths, lr):
        loss = self._loss(xt, yt, packed_lengths)
        grads = self.torch.autograd.grad(loss, self._plist)
        with self.torch.no_grad():
            for p, g in zip(self._plist, grads):
                p.sub_(g, alpha=lr)
        return loss

    # --- the Engine interface --------------------------------------------------------------------
    def forward(self, x, lengths=None):
        xt, _, pl, single = self._place(x, None, lengths)
        with self.torch.no_grad():
            probs = self.torch.softmax(self._logits(xt, pl), dim=-1)
        probs = self._host(probs)
        return probs[0] if single else probs

    def loss(self, x, y, lengths=None):
        xt, yt, pl, _ = self._place(x, y, lengths)
        with self.torch.no_grad():
            return float(self._loss(xt, yt, pl))

    def gradients(self, x, y, lengths=None):
        xt, yt, pl, _ = self._place(x, y, lengths)
        grads = self.torch.autograd.grad(self._loss(xt, yt, pl), self._plist)
        return {k: self._host(g[self._rows[k]]) for k, g in zip(self.param_names, grads)}

    def train_step(self, x, y, lr=0.1, lengths=None):
        xt, yt, pl, _ = self._place(x, y, lengths)
        return float(self._sgd(xt, yt, pl, float(lr)).detach())

    def runner(self, task, x, y, lengths, lr=0.01):
        xt, yt, pl, _ = self._place(x, y if task == "train" else None, lengths)
        torch, lr = self.torch, float(lr)
        sync = self._sync()

        if task == "forward":
            def step():
                with torch.no_grad():
                    out = torch.softmax(self._logits(xt, pl), dim=-1)
                sync()
                return out
        else:
            def step():
                out = self._sgd(xt, yt, pl, lr)
                sync()
                return out
        return step

    def _sync(self):
        """Waits for this engine's device (its own CUDA device, not the current one)."""
        if self.device.type != "cuda":
            return lambda: None
        torch, device = self.torch, self.device
        return lambda: torch.cuda.synchronize(device)

    # --- the peak probe --------------------------------------------------------------------------
    def matmul_step(self, n):
        """``torch.mm`` on the engine's device and dtype; the operands placed there once (the
        same seeded values on every device: no random generator, so none on the wrong device)."""
        torch, sync = self.torch, self._sync()
        a, b = (torch.as_tensor(v, device=self.device) for v in matmul_operands(n, self.dtype))

        def step():
            out = torch.mm(a, b)
            sync()
            return out
        return step

    def matmul_label(self):
        return f"torch.mm on {self.device_actual()}"
