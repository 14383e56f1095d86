"""Test kit: a real broker in a subprocess, a fake clock, a fault-injecting filesystem."""

from tomyum.testing.broker import BrokerProcess, ExternalBroker, wait_until

__all__ = ["BrokerProcess", "ExternalBroker", "wait_until"]
