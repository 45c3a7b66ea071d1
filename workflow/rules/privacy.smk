# Rules of the privacy stage (see docs/CONTRACTS.md).
