"""Writes whylogs_reference.bin (whylogs 1.6.4) and the Parquet file it profiles.

Run from the repository root with whylogs installed: python tests/data/make_whylogs_fixture.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import whylogs as why

HERE = Path(__file__).resolve().parent


def main() -> None:
    rng = np.random.default_rng(3)
    size = 5000
    frame = pd.DataFrame(
        {
            "amount": rng.lognormal(3, 1, size),
            "country": rng.choice(["DE", "FR", "US"], size, p=[0.5, 0.3, 0.2]),
            "card_present": rng.random(size) < 0.6,
            "num_tx": rng.integers(0, 5, size),
        }
    )
    frame.loc[rng.random(size) < 0.1, "amount"] = np.nan
    why.log(frame).view().write(str(HERE / "whylogs_reference.bin"))
    frame.to_parquet(HERE / "whylogs_reference_source.parquet")


if __name__ == "__main__":
    main()
