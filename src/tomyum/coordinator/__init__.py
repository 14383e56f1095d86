"""Group and transaction coordinators; their state is stored in internal topics."""
