"""Channels: where a title is shown, and what the platform allows there.

- ``presets``: each channel's length budget, as the platform counts it, and its rules.
- ``shortening``: the fallback that complies, made of the ad's own words.
- ``rsa_assets``: the headlines and descriptions of one responsive search ad.
"""
