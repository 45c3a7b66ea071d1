"""Privacy stage: zCDP measurements for the model, the budget ledger, and publication.

- :mod:`privacy.mechanisms`: the discrete Gaussian (OpenDP calibration and accounting; seeded or
  OpenDP noise).
- :mod:`privacy.ledger`: the rho ledger that refuses to overspend.
- :mod:`privacy.measure`: ``privacy/measurements.parquet``, ``public_counts.parquet``,
  ``ledger.json`` from the exact internal cells.
- :mod:`privacy.publish`: ``published/`` (blocks, tracts, counties, draws, metadata).
- :mod:`privacy.evaluate`: ``evaluation/published.json`` (the only truth reader of the stage).
- :mod:`privacy.aggregate`: the ``cvap-aggregate`` command (district estimates from draws).
"""
