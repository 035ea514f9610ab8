"""The transport: routing, TLS, DNS, tunnels, connections and the adapter."""
