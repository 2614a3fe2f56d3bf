"""Segment lengths from body height (Winter 2009, *Biomechanics and Motor Control of Human
Movement*, 4th ed., fig. 4.1: segment lengths as fractions of height H)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Body:
    """Lengths in metres for a person of ``height_m``; joint centres, not skin outlines."""

    height_m: float

    @property
    def thigh_m(self) -> float:  # hip to knee, 0.245 H
        return 0.245 * self.height_m

    @property
    def shank_m(self) -> float:  # knee to ankle, 0.246 H
        return 0.246 * self.height_m

    @property
    def ankle_height_m(self) -> float:  # ankle centre above the sole, 0.039 H
        return 0.039 * self.height_m

    @property
    def foot_length_m(self) -> float:  # heel to toe tip, 0.152 H
        return 0.152 * self.height_m

    @property
    def ankle_forward_m(self) -> float:  # ankle centre in front of the back of the heel
        return 0.2 * self.foot_length_m

    @property
    def hip_separation_m(self) -> float:  # hip joint centres, about half of hip width 0.191 H
        return 0.1 * self.height_m

    @property
    def shoulder_separation_m(self) -> float:  # shoulder joint centres, ~0.8 of 0.259 H
        return 0.208 * self.height_m

    @property
    def trunk_m(self) -> float:  # hip joint level (0.530 H) to shoulder level (0.818 H)
        return (0.818 - 0.530) * self.height_m

    @property
    def upper_arm_m(self) -> float:  # 0.186 H
        return 0.186 * self.height_m

    @property
    def forearm_m(self) -> float:  # 0.146 H
        return 0.146 * self.height_m

    @property
    def hand_m(self) -> float:  # 0.108 H
        return 0.108 * self.height_m

    @property
    def head_centre_above_shoulder_m(self) -> float:  # ear level ~0.92 H
        return (0.92 - 0.818) * self.height_m

    @property
    def step_width_m(self) -> float:  # heel centre to heel centre, ~0.1 m at 1.75 m
        return 0.057 * self.height_m
