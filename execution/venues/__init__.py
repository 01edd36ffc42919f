"""Execution's side of the venues: the sim (paper) venue, the routing of each order to it or to a live adapter
(``integrations.venues``), and the live reconcile source that reads our books against a venue."""
