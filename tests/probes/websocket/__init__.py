"""Tests of monitor/probes/websocket."""
