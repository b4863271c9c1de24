"""ValueCredit: commercial-value credit for SMEs (the Chongqing 4+19+1 programme)."""

__version__ = "0.1.0"
