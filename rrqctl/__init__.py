"""rrqctl: Debian-native layer-2 virtual cables (an rrqnet(8)-compatible engine)."""

__version__ = "0.1.0"
