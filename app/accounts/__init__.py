"""Accounts discovered from AWS Organizations (docs/organizations.md): read the organization
(:mod:`.discover`), keep what was found and announce what changed once (:mod:`.store`), and
merge the accounts into the catalog beside the listed ones (:mod:`.merge`); :mod:`.sync` ties
them together for ``mhub accounts sync`` and ``mhub serve``."""
