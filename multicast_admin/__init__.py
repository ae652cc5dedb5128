"""multicast-proxy management: netlink bindings, domain API, CLIs, config."""
