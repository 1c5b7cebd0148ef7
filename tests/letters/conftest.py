"""Letters tests deliver to the same loopback SMTP server as the delivery tests."""

from tests.delivery.conftest import smtp_server

__all__ = ["smtp_server"]
