/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * multicast-proxy control protocol: the generic netlink families "multis"
 * (the sending side: groups and their members) and "multic" (the receiving
 * side: server/port entries mapped back to groups).
 *
 * This header is the single source of truth.  multicast_admin/uapi.py mirrors
 * it and tests/unit/test_uapi_parity.py fails when the two drift apart.
 *
 * Conventions:
 *  - IPv4 addresses are 4-byte attributes in network byte order (NLA_BE32).
 *  - IPv6 addresses are 16-byte binary attributes in network byte order
 *    (the *_ADDR6 attribute beside each *_ADDR one; exactly 16 bytes).  A
 *    request names an address by one of the two, never both; a reply
 *    carries the one of the object's family.  A group and its members (a
 *    client entry's server and group) are of one family: a mix is refused.
 *    An IPv6 group is multicast (ff00::/8) with a scope above
 *    interface-local; an IPv6 member or server is unicast: not multicast,
 *    loopback, unspecified or IPv4-mapped.  IPv6 has no broadcast: the
 *    BROADCAST flags are refused with an IPv6 group.
 *  - The limits (max_groups, max_members, max_entries) count both families.
 *  - Ports are u16 in host byte order; port 0 means "any port".
 *  - Counters are u64 (padded with the *_PAD attribute of their space).
 *  - Changing commands need CAP_NET_ADMIN in the network namespace's owning
 *    user namespace; reads are open to everybody.
 *  - Every refusal carries an extack message.
 *  - Saved state: a namespace's configuration starts empty and "not
 *    restored".  The service restores the saved state file into it, then
 *    sends SET_RESTORED.  A change sent with REQUIRE_RESTORED (what the
 *    tools send for every change they save to the file) is refused with
 *    -ESTALE while the namespace is not restored, so a file is never
 *    rewritten from a configuration that did not come from it.  GET_STATS
 *    reports RESTORED.  Nothing clears the mark: it goes with the
 *    namespace, or the module.
 *  - Configuration generation: GET_STATS reports GENERATION, a u64 that
 *    starts at a random value when the namespace's state is created (a
 *    module reload or a new namespace gives an unrelated one) and moves on
 *    by exactly one with every request that changes the configuration (the
 *    groups and their members, the entries, the restored mark).  A request
 *    that changes nothing (a JOIN of members already in, a CLEAR of nothing,
 *    a second SET_RESTORED) or is refused leaves it.  Counters are not
 *    configuration.  Equal generations read twice mean nothing changed in
 *    between.
 */
#ifndef _UAPI_LINUX_MULTICAST_PROXY_H
#define _UAPI_LINUX_MULTICAST_PROXY_H

#define MULTIS_GENL_NAME	"multis"
#define MULTIS_GENL_VERSION	1
#define MULTIC_GENL_NAME	"multic"
#define MULTIC_GENL_VERSION	1

/* The TOS byte that marks a proxied copy on the wire (the reference's value). */
#define MULTICAST_PROXY_MARKER_TOS	0xE0

/* ----------------------------------------------------------------------- */
/* multis: the server (sending host)                                        */
/* ----------------------------------------------------------------------- */

enum multis_cmd {
	MULTIS_CMD_UNSPEC,
	/*
	 * do:   GROUP_ADDR -> one group (GROUP_ADDR, FLAGS, MEMBER_COUNT, STATS).
	 * dump: every group, one message each (no members).
	 */
	MULTIS_CMD_GET_GROUP,
	/*
	 * Create GROUP_ADDR if it does not exist (with FLAGS), then add every
	 * member of MEMBERS that is not in it yet.  All or nothing: one bad
	 * member, or a limit, refuses the whole request.  FLAGS given for an
	 * existing group must be its flags (-EEXIST otherwise); without FLAGS
	 * it keeps them.  With NLM_F_EXCL an existing group is an error
	 * (-EEXIST).
	 */
	MULTIS_CMD_JOIN,
	/* Remove every member of MEMBERS from GROUP_ADDR; all or nothing. */
	MULTIS_CMD_QUIT,
	/* Delete GROUP_ADDR and its members. */
	MULTIS_CMD_DEL_GROUP,
	/* Delete every group. */
	MULTIS_CMD_CLEAR,
	/*
	 * dump only, GROUP_ADDR required: the group's members, several per
	 * message (GROUP_ADDR, MEMBERS{MEMBER{ADDR, STATS}...}).
	 */
	MULTIS_CMD_GET_MEMBERS,
	/* do: namespace-wide STATS plus the limits and GROUP_COUNT. */
	MULTIS_CMD_GET_STATS,
	/* Zero every counter: namespace-wide, per group and per member. */
	MULTIS_CMD_RESET_STATS,
	/* Mark the namespace restored from the saved state (see the top). */
	MULTIS_CMD_SET_RESTORED,

	__MULTIS_CMD_MAX,
};
#define MULTIS_CMD_MAX (__MULTIS_CMD_MAX - 1)

enum multis_attr {
	MULTIS_A_UNSPEC,
	MULTIS_A_PAD,
	MULTIS_A_GROUP_ADDR,	/* be32 */
	MULTIS_A_GROUP_FLAGS,	/* u32, MULTIS_GROUP_F_* */
	MULTIS_A_MEMBERS,	/* nest of MULTIS_A_MEMBER */
	MULTIS_A_MEMBER_COUNT,	/* u32 */
	MULTIS_A_STATS,		/* nest, enum multis_stats_attr */
	MULTIS_A_GROUP_COUNT,	/* u32 */
	MULTIS_A_MAX_GROUPS,	/* u32, module parameter max_groups */
	MULTIS_A_MAX_MEMBERS,	/* u32, module parameter max_members */
	MULTIS_A_MARKER_TOS,	/* u8 */
	MULTIS_A_RESTORED,	/* u8, GET_STATS: 1 once SET_RESTORED */
	MULTIS_A_REQUIRE_RESTORED, /* flag: refuse the change unless restored */
	MULTIS_A_GROUP_ADDR6,	/* binary, 16 bytes: an IPv6 group */
	MULTIS_A_GENERATION,	/* u64, GET_STATS: the configuration's generation */

	__MULTIS_A_MAX,
};
#define MULTIS_A_MAX (__MULTIS_A_MAX - 1)

/* Inside MULTIS_A_MEMBERS: each element is a nest of enum multis_member_attr. */
#define MULTIS_A_MEMBER 1

enum multis_member_attr {
	MULTIS_MEMBER_A_UNSPEC,
	MULTIS_MEMBER_A_ADDR,	/* be32 */
	MULTIS_MEMBER_A_STATS,	/* nest, enum multis_stats_attr */
	MULTIS_MEMBER_A_ADDR6,	/* binary, 16 bytes: an IPv6 member */

	__MULTIS_MEMBER_A_MAX,
};
#define MULTIS_MEMBER_A_MAX (__MULTIS_MEMBER_A_MAX - 1)

/*
 * One counter space for the namespace, a group and a member.  A member's
 * STATS carries PACKETS, BYTES and the per-copy drops (NOMEM, NO_ROUTE,
 * XMIT, TOO_BIG); a group's and the namespace's carry all of them.
 */
enum multis_stats_attr {
	MULTIS_STATS_A_UNSPEC,
	MULTIS_STATS_A_PAD,
	MULTIS_STATS_A_DATAGRAMS,	/* u64: original datagrams fanned out */
	MULTIS_STATS_A_PACKETS,		/* u64: unicast copies handed to the stack */
	MULTIS_STATS_A_BYTES,		/* u64: IP bytes of those copies */
	MULTIS_STATS_A_DROP_NO_MEMBER,	/* u64: datagrams to a group with no member */
	MULTIS_STATS_A_DROP_NOMEM,	/* u64: copies not made: out of memory */
	MULTIS_STATS_A_DROP_NO_ROUTE,	/* u64: copies with no route to the member */
	MULTIS_STATS_A_DROP_XMIT,	/* u64: copies the output path refused */
	MULTIS_STATS_A_DROP_TOO_BIG,	/* u64: copies with DF over the MTU */

	__MULTIS_STATS_A_MAX,
};
#define MULTIS_STATS_A_MAX (__MULTIS_STATS_A_MAX - 1)

/*
 * Group flags.  Without BROADCAST a group address must be multicast
 * (224.0.0.0/4); with it, it must be a broadcast address instead.  VRRP fans
 * out IP protocol 112 as well as UDP.
 */
#define MULTIS_GROUP_F_BROADCAST	(1U << 0)
#define MULTIS_GROUP_F_VRRP		(1U << 1)
#define MULTIS_GROUP_F_ALL		(MULTIS_GROUP_F_BROADCAST | MULTIS_GROUP_F_VRRP)

/* ----------------------------------------------------------------------- */
/* multic: the client (receiving host)                                      */
/* ----------------------------------------------------------------------- */

enum multic_cmd {
	MULTIC_CMD_UNSPEC,
	/*
	 * do:   SERVER_ADDR + PORT -> one entry.
	 * dump: every entry (SERVER_ADDR, PORT, GROUP_ADDR, STATS).
	 */
	MULTIC_CMD_GET_ENTRY,
	/*
	 * Map copies from SERVER_ADDR to UDP port PORT (0: any port) back to
	 * GROUP_ADDR.  An existing key is -EEXIST, unless NLM_F_REPLACE is set,
	 * which moves it to the new group.
	 */
	MULTIC_CMD_ADD,
	/* Remove the entry SERVER_ADDR + PORT. */
	MULTIC_CMD_DEL,
	/* Remove every entry. */
	MULTIC_CMD_CLEAR,
	/* do: namespace-wide STATS plus the limits and counts. */
	MULTIC_CMD_GET_STATS,
	/* Zero every counter. */
	MULTIC_CMD_RESET_STATS,
	/* Mark the namespace restored from the saved state (see the top). */
	MULTIC_CMD_SET_RESTORED,

	__MULTIC_CMD_MAX,
};
#define MULTIC_CMD_MAX (__MULTIC_CMD_MAX - 1)

enum multic_attr {
	MULTIC_A_UNSPEC,
	MULTIC_A_PAD,
	MULTIC_A_SERVER_ADDR,	/* be32 */
	MULTIC_A_PORT,		/* u16, host order, 0 = any port */
	MULTIC_A_GROUP_ADDR,	/* be32 */
	MULTIC_A_STATS,		/* nest, enum multic_stats_attr */
	MULTIC_A_ENTRY_COUNT,	/* u32 */
	MULTIC_A_GROUP_COUNT,	/* u32: distinct groups in use */
	MULTIC_A_MAX_GROUPS,	/* u32, module parameter max_groups */
	MULTIC_A_MAX_ENTRIES,	/* u32, module parameter max_entries */
	MULTIC_A_MARKER_TOS,	/* u8 */
	MULTIC_A_ENTRY_FLAGS,	/* u32, MULTIC_ENTRY_F_* */
	MULTIC_A_RESTORED,	/* u8, GET_STATS: 1 once SET_RESTORED */
	MULTIC_A_REQUIRE_RESTORED, /* flag: refuse the change unless restored */
	MULTIC_A_SERVER_ADDR6,	/* binary, 16 bytes: an IPv6 server */
	MULTIC_A_GROUP_ADDR6,	/* binary, 16 bytes: an IPv6 group */
	MULTIC_A_GENERATION,	/* u64, GET_STATS: the configuration's generation */

	__MULTIC_A_MAX,
};
#define MULTIC_A_MAX (__MULTIC_A_MAX - 1)

/*
 * Entry flags.  Without BROADCAST the group an entry restores to must be
 * multicast (224.0.0.0/4); with it, a broadcast address instead: the limited
 * broadcast 255.255.255.255 or a subnet's broadcast address (any address that
 * is not multicast, loopback or in 0.0.0.0/8: which are a subnet's broadcast
 * depends on interface configuration).  Listings carry the flags.
 */
#define MULTIC_ENTRY_F_BROADCAST	(1U << 0)
#define MULTIC_ENTRY_F_ALL		MULTIC_ENTRY_F_BROADCAST

enum multic_stats_attr {
	MULTIC_STATS_A_UNSPEC,
	MULTIC_STATS_A_PAD,
	MULTIC_STATS_A_PACKETS,		/* u64: copies restored to their group */
	MULTIC_STATS_A_BYTES,		/* u64: IP bytes of those */
	MULTIC_STATS_A_NOT_LOCAL,	/* u64: marked, matched, but not addressed to this host: left alone */
	MULTIC_STATS_A_DROP_NOMEM,	/* u64: could not be made writable: dropped */
	MULTIC_STATS_A_NO_ENTRY,	/* u64, namespace only: marked, no entry for its server and port: left alone */
	MULTIC_STATS_A_NOT_UDP,		/* u64, namespace only: marked IPv6, not plain UDP after extension headers: left alone */

	__MULTIC_STATS_A_MAX,
};
#define MULTIC_STATS_A_MAX (__MULTIC_STATS_A_MAX - 1)

/*
 * Tracepoints (tracefs events/multis and events/multic): the reason field of
 * multis:multis_not_sent and multic:multic_skip.  Part of the ABI: trace
 * tools decode them by these values.
 */
enum multis_trace_reason {
	MULTIS_TRACE_NO_ROUTE,		/* no route to the member */
	MULTIS_TRACE_NOMEM,		/* the copy could not be made */
	MULTIS_TRACE_TOO_BIG,		/* DF, larger than the path MTU */
	MULTIS_TRACE_POLICY,		/* refused by the output path's policy (-EPERM) */
	MULTIS_TRACE_XMIT,		/* refused by the output path: another error */
};

enum multic_trace_reason {
	MULTIC_TRACE_NO_ENTRY,		/* marked, no entry for its server and port */
	MULTIC_TRACE_NOT_LOCAL,		/* matched, not addressed to this host */
	MULTIC_TRACE_NOMEM,		/* matched, could not be made writable: dropped */
};

#endif /* _UAPI_LINUX_MULTICAST_PROXY_H */
