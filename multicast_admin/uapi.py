"""The control protocol, mirrored from kernel/include/uapi/linux/multicast_proxy.h.

The C header is the single source of truth.  Every name it defines (enum
members, ``#define`` values) appears here with the same name and value, and
nothing else in upper case does: tests/unit/test_uapi_parity.py parses the
header and fails on any difference, in either direction.
"""

from typing import Final

MULTIS_GENL_NAME: Final = "multis"
MULTIS_GENL_VERSION: Final = 1
MULTIC_GENL_NAME: Final = "multic"
MULTIC_GENL_VERSION: Final = 1

# The TOS byte that marks a proxied copy on the wire (the reference's value).
MULTICAST_PROXY_MARKER_TOS: Final = 0xE0

# --- multis: the server (sending host) -------------------------------------

# enum multis_cmd
MULTIS_CMD_UNSPEC: Final = 0
MULTIS_CMD_GET_GROUP: Final = 1
MULTIS_CMD_JOIN: Final = 2
MULTIS_CMD_QUIT: Final = 3
MULTIS_CMD_DEL_GROUP: Final = 4
MULTIS_CMD_CLEAR: Final = 5
MULTIS_CMD_GET_MEMBERS: Final = 6
MULTIS_CMD_GET_STATS: Final = 7
MULTIS_CMD_RESET_STATS: Final = 8
MULTIS_CMD_SET_RESTORED: Final = 9
__MULTIS_CMD_MAX: Final = 10
MULTIS_CMD_MAX: Final = __MULTIS_CMD_MAX - 1

# enum multis_attr
MULTIS_A_UNSPEC: Final = 0
MULTIS_A_PAD: Final = 1
MULTIS_A_GROUP_ADDR: Final = 2
MULTIS_A_GROUP_FLAGS: Final = 3
MULTIS_A_MEMBERS: Final = 4
MULTIS_A_MEMBER_COUNT: Final = 5
MULTIS_A_STATS: Final = 6
MULTIS_A_GROUP_COUNT: Final = 7
MULTIS_A_MAX_GROUPS: Final = 8
MULTIS_A_MAX_MEMBERS: Final = 9
MULTIS_A_MARKER_TOS: Final = 10
MULTIS_A_RESTORED: Final = 11
MULTIS_A_REQUIRE_RESTORED: Final = 12
MULTIS_A_GROUP_ADDR6: Final = 13
MULTIS_A_GENERATION: Final = 14
__MULTIS_A_MAX: Final = 15
MULTIS_A_MAX: Final = __MULTIS_A_MAX - 1

# Inside MULTIS_A_MEMBERS: each element is a nest of enum multis_member_attr.
MULTIS_A_MEMBER: Final = 1

# enum multis_member_attr
MULTIS_MEMBER_A_UNSPEC: Final = 0
MULTIS_MEMBER_A_ADDR: Final = 1
MULTIS_MEMBER_A_STATS: Final = 2
MULTIS_MEMBER_A_ADDR6: Final = 3
__MULTIS_MEMBER_A_MAX: Final = 4
MULTIS_MEMBER_A_MAX: Final = __MULTIS_MEMBER_A_MAX - 1

# enum multis_stats_attr
MULTIS_STATS_A_UNSPEC: Final = 0
MULTIS_STATS_A_PAD: Final = 1
MULTIS_STATS_A_DATAGRAMS: Final = 2
MULTIS_STATS_A_PACKETS: Final = 3
MULTIS_STATS_A_BYTES: Final = 4
MULTIS_STATS_A_DROP_NO_MEMBER: Final = 5
MULTIS_STATS_A_DROP_NOMEM: Final = 6
MULTIS_STATS_A_DROP_NO_ROUTE: Final = 7
MULTIS_STATS_A_DROP_XMIT: Final = 8
MULTIS_STATS_A_DROP_TOO_BIG: Final = 9
__MULTIS_STATS_A_MAX: Final = 10
MULTIS_STATS_A_MAX: Final = __MULTIS_STATS_A_MAX - 1

# Group flags.
MULTIS_GROUP_F_BROADCAST: Final = 1 << 0
MULTIS_GROUP_F_VRRP: Final = 1 << 1
MULTIS_GROUP_F_ALL: Final = MULTIS_GROUP_F_BROADCAST | MULTIS_GROUP_F_VRRP

# --- multic: the client (receiving host) -----------------------------------

# enum multic_cmd
MULTIC_CMD_UNSPEC: Final = 0
MULTIC_CMD_GET_ENTRY: Final = 1
MULTIC_CMD_ADD: Final = 2
MULTIC_CMD_DEL: Final = 3
MULTIC_CMD_CLEAR: Final = 4
MULTIC_CMD_GET_STATS: Final = 5
MULTIC_CMD_RESET_STATS: Final = 6
MULTIC_CMD_SET_RESTORED: Final = 7
__MULTIC_CMD_MAX: Final = 8
MULTIC_CMD_MAX: Final = __MULTIC_CMD_MAX - 1

# enum multic_attr
MULTIC_A_UNSPEC: Final = 0
MULTIC_A_PAD: Final = 1
MULTIC_A_SERVER_ADDR: Final = 2
MULTIC_A_PORT: Final = 3
MULTIC_A_GROUP_ADDR: Final = 4
MULTIC_A_STATS: Final = 5
MULTIC_A_ENTRY_COUNT: Final = 6
MULTIC_A_GROUP_COUNT: Final = 7
MULTIC_A_MAX_GROUPS: Final = 8
MULTIC_A_MAX_ENTRIES: Final = 9
MULTIC_A_MARKER_TOS: Final = 10
MULTIC_A_ENTRY_FLAGS: Final = 11
MULTIC_A_RESTORED: Final = 12
MULTIC_A_REQUIRE_RESTORED: Final = 13
MULTIC_A_SERVER_ADDR6: Final = 14
MULTIC_A_GROUP_ADDR6: Final = 15
MULTIC_A_GENERATION: Final = 16
__MULTIC_A_MAX: Final = 17
MULTIC_A_MAX: Final = __MULTIC_A_MAX - 1

# Entry flags.
MULTIC_ENTRY_F_BROADCAST: Final = 1 << 0
MULTIC_ENTRY_F_ALL: Final = MULTIC_ENTRY_F_BROADCAST

# enum multic_stats_attr
MULTIC_STATS_A_UNSPEC: Final = 0
MULTIC_STATS_A_PAD: Final = 1
MULTIC_STATS_A_PACKETS: Final = 2
MULTIC_STATS_A_BYTES: Final = 3
MULTIC_STATS_A_NOT_LOCAL: Final = 4
MULTIC_STATS_A_DROP_NOMEM: Final = 5
MULTIC_STATS_A_NO_ENTRY: Final = 6
MULTIC_STATS_A_NOT_UDP: Final = 7
__MULTIC_STATS_A_MAX: Final = 8
MULTIC_STATS_A_MAX: Final = __MULTIC_STATS_A_MAX - 1

# enum multis_trace_reason, enum multic_trace_reason: tracepoint reason fields
MULTIS_TRACE_NO_ROUTE: Final = 0
MULTIS_TRACE_NOMEM: Final = 1
MULTIS_TRACE_TOO_BIG: Final = 2
MULTIS_TRACE_POLICY: Final = 3
MULTIS_TRACE_XMIT: Final = 4
MULTIC_TRACE_NO_ENTRY: Final = 0
MULTIC_TRACE_NOT_LOCAL: Final = 1
MULTIC_TRACE_NOMEM: Final = 2
