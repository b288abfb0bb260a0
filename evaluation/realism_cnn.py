"""The CNN discriminator of the machine Turing test: a small MONAI 3D classifier.

Input: the blinded int16 crop (:mod:`evaluation.realism`), windowed like the study's default
display (abdomen W400/L40 -> [0, 1]: what a reader looks at) and reduced by area averaging to
``input_shape`` (48 x 48 x 32 voxels: 2 mm for the default 96 x 96 x 64 mm box) so that a CPU
trains it in minutes. Network: ``monai.networks.nets.Classifier`` (residual conv encoder,
channels 8-16-32-64, instance norm, one logit; one intra-op thread on CPU). Training per fold
from scratch: Adam, BCE with the arms balanced by ``pos_weight``, MONAI augmentation (flips,
in-plane 90 degree rotations, small affine, noise, intensity shift), everything seeded (torch,
the transforms and the batch order). CPU by default; CUDA when present (``device='auto'``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypedDict

import numpy as np

INPUT_SHAPE = (48, 48, 32)
CHANNELS = (8, 16, 32, 64)
WINDOW = (400.0, 40.0)  # width, level (HU): the study default (abdomen)
EPOCHS = 40
BATCH_SIZE = 8
LR = 1e-3
RES_UNITS = 1
# One intra-op thread on CPU: this network is too small to gain from more, and on shared cores
# more threads made a training step 6-15x slower (measured: 0.37 s vs 2.2-5.3 s per batch).
CPU_THREADS = 1


class CnnOptions(TypedDict, total=False):
    """The options a run may set, as keywords of :func:`cnn_oof_scores` and :func:`describe`."""

    epochs: int
    device: str
    input_shape: Sequence[int]


def describe(
    *, epochs: int = EPOCHS, device: str = "auto", input_shape: Sequence[int] = INPUT_SHAPE
) -> str:
    return (
        f"monai.networks.nets.Classifier(channels {CHANNELS}, strides 2, {RES_UNITS} "
        f"residual unit(s), instance norm, dropout 0.2) on the crop windowed W{WINDOW[0]:g}/L{WINDOW[1]:g} -> [0, 1] and "
        f"area-resized to {tuple(input_shape)}; {epochs} epochs, Adam lr {LR:g}, batch "
        f"{BATCH_SIZE}, BCE with balanced pos_weight; augmentation RandFlip (x, y), "
        "RandRotate90 (axial), RandAffine (rotate 15 deg, scale 10%, shift 3 voxels), "
        "RandGaussianNoise, RandShiftIntensity; trained from scratch per fold, seeded; "
        f"device {device}"
    )


def preprocess(crops: np.ndarray, input_shape: Sequence[int] = INPUT_SHAPE):
    """(n, X, Y, Z) HU -> float tensor (n, 1, *input_shape) in [0, 1]."""
    import torch
    import torch.nn.functional as F

    width, level = WINDOW
    x = torch.as_tensor(np.asarray(crops, dtype=np.float32))
    x = ((x - (level - width / 2)) / width).clamp_(0.0, 1.0).unsqueeze(1)
    if tuple(x.shape[2:]) != tuple(input_shape):
        x = F.interpolate(x, size=tuple(input_shape), mode="area")
    return x


def _augment(seed: int):
    from monai.transforms import (
        Compose,
        RandAffine,
        RandFlip,
        RandGaussianNoise,
        RandRotate90,
        RandShiftIntensity,
    )

    t = Compose(
        [
            RandFlip(prob=0.5, spatial_axis=0),
            RandFlip(prob=0.5, spatial_axis=1),
            RandRotate90(prob=0.5, max_k=3, spatial_axes=(0, 1)),
            RandAffine(
                prob=0.5,
                rotate_range=(0.0, 0.0, 0.26),
                scale_range=(0.1, 0.1, 0.1),
                translate_range=(3, 3, 2),
                padding_mode="border",
            ),
            RandGaussianNoise(prob=0.3, std=0.02),
            RandShiftIntensity(offsets=0.05, prob=0.3),
        ]
    )
    t.set_random_state(seed=seed)
    return t


def _network(input_shape: Sequence[int]):
    from monai.networks.nets import Classifier

    return Classifier(
        in_shape=(1, *input_shape),
        classes=1,
        channels=CHANNELS,
        strides=(2, 2, 2, 2),
        num_res_units=RES_UNITS,
        norm="INSTANCE",
        dropout=0.2,
    )


def train_and_score(
    x_train, y_train: np.ndarray, x_test, *, seed: int, epochs: int, device
) -> np.ndarray:
    """Train one network on (x_train, y_train) and return logits ("looks real") of x_test."""
    import torch

    torch.manual_seed(seed)
    net = _network(x_train.shape[2:]).to(device)
    aug = _augment(seed)
    y = torch.as_tensor(y_train, dtype=torch.float32)
    n_pos = float(y.sum())
    pos_weight = torch.tensor([(len(y) - n_pos) / max(n_pos, 1.0)], device=device)
    loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=pos_weight)
    opt = torch.optim.Adam(net.parameters(), lr=LR, weight_decay=1e-4)
    gen = torch.Generator().manual_seed(seed)
    net.train()
    for _ in range(epochs):
        order = torch.randperm(len(y), generator=gen)
        for start in range(0, len(y), BATCH_SIZE):
            idx = order[start : start + BATCH_SIZE]
            batch = torch.stack([torch.as_tensor(aug(x_train[i])) for i in idx.tolist()])
            opt.zero_grad()
            loss = loss_fn(net(batch.to(device)).squeeze(1), y[idx].to(device))
            loss.backward()
            opt.step()
    net.eval()
    with torch.no_grad():
        return net(x_test.to(device)).squeeze(1).float().cpu().numpy()


def cnn_oof_scores(
    crops: np.ndarray,
    y: np.ndarray,
    folds,
    *,
    seed: int = 0,
    epochs: int = EPOCHS,
    device: str = "auto",
    input_shape: Sequence[int] = INPUT_SHAPE,
) -> np.ndarray:
    """Out-of-fold logits of the CNN for every crop (one network per fold)."""
    import torch

    from synth_backend.base import resolve_device

    x = preprocess(crops, input_shape)
    out = np.full(len(y), np.nan)
    dev = resolve_device(device)
    threads = torch.get_num_threads()
    if dev == "cpu":
        torch.set_num_threads(CPU_THREADS)
    try:
        for k, (train, test) in enumerate(folds):
            out[test] = train_and_score(
                x[train], np.asarray(y)[train], x[test], seed=seed + k, epochs=epochs, device=dev
            )
    finally:
        torch.set_num_threads(threads)
    return out
