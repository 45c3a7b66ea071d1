# Rules of the synthetic stage (see docs/CONTRACTS.md).
