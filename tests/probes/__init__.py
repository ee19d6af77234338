"""Tests of monitor/probes, laid out as the package is."""
