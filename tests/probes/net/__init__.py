"""Tests of monitor/probes/net: the library hooks."""
