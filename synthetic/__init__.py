"""The synthetic world: real counties scaled down, a true population with statuses, a census
frame and seven administrative sources with realistic coverage, staleness and record errors.

Modules: ``geography`` (counties, tracts, block groups, blocks, map layout), ``population``
(households, persons, statuses, dates, flags), ``identities`` (names from Faker word lists,
synthetic SSNs/ITINs/A-numbers, addresses), ``errors`` (vectorized record errors),
``sources`` (one maker per agency), ``world`` (``generate_world``, ``write_world``, CLI).
"""
