"""The daemon's own HTTP side: the server and its endpoints, the status page, the results
API, and the web config (TLS, basic auth) that guards them."""
