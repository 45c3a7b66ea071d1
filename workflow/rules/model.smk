# Rules of the model stage (see docs/CONTRACTS.md).
