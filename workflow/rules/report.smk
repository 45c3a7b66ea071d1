# Rules of the report stage (see docs/CONTRACTS.md).
