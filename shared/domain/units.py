"""Unit factors used across the domain: one definition of each."""

from typing import Final

# 1 psi = 6894.757293168 Pa exactly (the pound-force per square inch by definition).
BAR_PER_PSI: Final = 0.06894757293168361
PSI_PER_BAR: Final = 1.0 / BAR_PER_PSI
