# Rules of the linkage stage (see docs/CONTRACTS.md).
