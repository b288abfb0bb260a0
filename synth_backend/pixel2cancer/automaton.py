"""Vectorized cellular automaton of Pixel2Cancer in torch (same code on CUDA and CPU).

State per voxel (int32, flattened (x, y, z) grid with a one-voxel border):
``0`` healthy organ, ``1..10`` tumor population, ``-1`` dead (necrosis), ``VESSEL + p`` a vessel
under pressure ``p`` (0..2), ``WALL`` outside the organ or the border (blocks everything).
``level`` holds the density level of organ voxels (0, 1, 2 = levels 1-3) and 3 elsewhere.

One step reads the previous state only (synchronous update; the reference's CUDA kernel updates
in place with atomics, so its result depends on thread order):

* growth: states 1..9 gain 1 (1-4 "proliferative", 5-9 also invade);
* invasion: every cell at 5..10 makes up to 3 tries at a uniformly random cell of its 3x3x3
  neighbourhood (itself included, as in the reference); a try succeeds when the target is tissue
  in 0..9 and a uniform draw is below the invasion probability of the target's density level;
  the first success adds 1 to the target;
* mass effect: a try of a cell at 10 that hits a vessel (before the first success) pushes it
  (+1 pressure); a vessel pushed beyond pressure 2 becomes level-1 organ tissue (invaded).

Work is proportional to the tumor, not the grid: only active cells are gathered each step.
Random draws come from one ``torch.Generator`` on the grid's device, so a seed gives the same
tumor bit for bit on the same device.
"""

from __future__ import annotations

import torch

TUMOR_MAX = 10
VESSEL = 100
WALL = 1000
TRIES = 3


class Automaton:
    """Holds the padded state/level tensors of one grid and advances them.

    ``state`` and ``level`` are (x, y, z) int tensors *without* border (added here);
    ``probs`` the invasion probability per density level (3 values).
    """

    def __init__(self, state: torch.Tensor, level: torch.Tensor, probs, generator: torch.Generator):
        dev = state.device
        self.shape = tuple(int(s) + 2 for s in state.shape)
        padded = torch.full(self.shape, WALL, dtype=torch.int32, device=dev)
        padded[1:-1, 1:-1, 1:-1] = state.to(torch.int32)
        lev = torch.full(self.shape, 3, dtype=torch.int64, device=dev)
        lev[1:-1, 1:-1, 1:-1] = level.to(torch.int64)
        self.state = padded.reshape(-1)
        self.level = lev.reshape(-1)
        self.probs = torch.tensor([*probs, 0.0], dtype=torch.float32, device=dev)
        self.gen = generator
        _, ny, nz = self.shape
        d = torch.arange(-1, 2, device=dev)
        dx, dy, dz = torch.meshgrid(d, d, d, indexing="ij")
        self.offsets = (dx * ny * nz + dy * nz + dz).reshape(-1)
        self.strides = (ny * nz, nz, 1)
        self.frontier: torch.Tensor | None = None
        self._since_refresh = 0

    def flat_index(self, xyz: torch.Tensor) -> torch.Tensor:
        """(N, 3) unpadded voxel coordinates -> indices into the flat padded grid."""
        p = xyz.to(self.state.device).long() + 1
        return p[:, 0] * self.strides[0] + p[:, 1] * self.strides[1] + p[:, 2]

    def _draw(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        dev = self.state.device
        choice = torch.randint(0, 27, (n, TRIES), generator=self.gen, device=dev)
        u = torch.rand((n, TRIES), generator=self.gen, device=dev)
        return choice, u

    def _refresh_frontier(self) -> None:
        """Active cells = tumor cells (1..10) that can still change something: a cell at 10
        whose 26 neighbours are all 10, dead or wall can never act again (states only grow
        during growth), so it leaves the list. Keeps each step proportional to the surface."""
        s = self.state
        if self.frontier is None:
            self.frontier = torch.nonzero((s >= 1) & (s <= TUMOR_MAX)).squeeze(1)
        f = self.frontier[s[self.frontier] >= 1]
        full = s[f] == TUMOR_MAX
        cand = f[full]
        if cand.numel():
            nb = s[cand[:, None] + self.offsets]
            inert = ((nb == TUMOR_MAX) | (nb == -1) | (nb == WALL)).all(dim=1)
            keep = torch.ones_like(f, dtype=torch.bool)
            keep[torch.nonzero(full).squeeze(1)[inert]] = False
            f = f[keep]
        self.frontier = f

    def step(self) -> None:
        """One synchronous growth / invasion / mass-effect step (see the module docstring)."""
        s = self.state
        if self.frontier is None or self._since_refresh >= 4:
            self._refresh_frontier()
            self._since_refresh = 0
        self._since_refresh += 1
        active = self.frontier
        assert active is not None  # _refresh_frontier set it
        if active.numel() == 0:
            return
        vals = s[active]
        growing = active[vals < TUMOR_MAX]
        inv_mask = vals >= 5
        inv, inv_val = active[inv_mask], vals[inv_mask]
        choice, u = self._draw(inv.numel())
        tgt = inv[:, None] + self.offsets[choice]
        ts, tl = s[tgt], self.level[tgt]
        ok = (ts >= 0) & (ts < TUMOR_MAX) & (u < self.probs[tl])
        tries_before = torch.cumsum(ok.int(), dim=1) - ok.int()
        chosen = ok & (tries_before == 0)
        vessel = (ts >= VESSEL) & (ts < WALL)
        push = vessel & (tries_before == 0) & ~ok & (inv_val[:, None] >= TUMOR_MAX)
        born = torch.unique(tgt[chosen & (ts == 0)])
        touched = torch.cat([growing, tgt[chosen], tgt[push]])
        # all reads above, all writes below: a synchronous update
        s.index_add_(0, touched, torch.ones_like(touched, dtype=s.dtype))
        t = s[touched]
        invaded = (t > VESSEL + 2) & (t < WALL)
        t = torch.where(t < VESSEL, t.clamp(max=TUMOR_MAX), t)
        t = torch.where(invaded, torch.zeros_like(t), t)
        s[touched] = t
        if bool(invaded.any()):
            self.level[touched[invaded]] = 0
        self.frontier = torch.cat([active, born])

    def kill(self, points: torch.Tensor, extra_per_point: torch.Tensor, spread: int) -> None:
        """Start necrosis: each point (N, 3) that is tumor dies, plus ``extra_per_point[i]``
        cells at random offsets in [-spread, spread) around it that are at state 10."""
        s = self.state
        idx = self.flat_index(points)
        s[idx[s[idx] >= 1]] = -1
        total = int(extra_per_point.sum())
        if total == 0 or spread < 1:
            return
        centre = torch.repeat_interleave(
            points.to(s.device).long(), extra_per_point.to(s.device).long(), dim=0
        )
        off = torch.randint(-spread, spread, (total, 3), generator=self.gen, device=s.device)
        xyz = centre + off
        inner = torch.tensor(self.shape, device=s.device) - 2
        valid = ((xyz >= 0) & (xyz < inner)).all(dim=1)
        cand = self.flat_index(xyz[valid])
        s[cand[s[cand] == TUMOR_MAX]] = -1

    def spread_death(self) -> None:
        """One necrosis pass: each dead cell turns its first of 3 random neighbours at state 10
        into a dead cell."""
        s = self.state
        dead = torch.nonzero(s == -1).squeeze(1)
        if dead.numel() == 0:
            return
        choice, _ = self._draw(dead.numel())
        tgt = dead[:, None] + self.offsets[choice]
        ok = s[tgt] == TUMOR_MAX
        first = ok & ((torch.cumsum(ok.int(), dim=1) - ok.int()) == 0)
        s[tgt[first]] = -1

    def unpadded_state(self) -> torch.Tensor:
        return self.state.reshape(self.shape)[1:-1, 1:-1, 1:-1]
