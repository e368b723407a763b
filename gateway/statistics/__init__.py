"""The statistics flows (F6 care activity per neighbourhood, F13 flow activity): the events counted at intake and
their aggregates with small cells suppressed (:mod:`gateway.statistics.counting`), and the monthly publication
of those aggregates to their recipients (:mod:`gateway.statistics.publication`)."""
