"""Producer ids and transactions: the transaction coordinator and its log."""

from tomyum.coordinator.txn.coordinator import TransactionCoordinator

__all__ = ["TransactionCoordinator"]
