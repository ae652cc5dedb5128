/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Tracepoints of the receiving side (tracefs events/multic): each copy
 * restored, each marked copy left alone or dropped with the reason, and each
 * unmarked datagram from a configured server and port (the marker rewritten
 * on the way).  Free while disabled (a static branch); recorded by perf,
 * trace-cmd and `multicast-proxy trace`.  Addresses are in network byte
 * order, ports in host order; netns is the inode number of the receiving
 * namespace (as in /proc/PID/ns/net).
 */
#undef TRACE_SYSTEM
#define TRACE_SYSTEM multic

#if !defined(_MULTIC_TRACE_H) || defined(TRACE_HEADER_MULTI_READ)
#define _MULTIC_TRACE_H

#include <linux/tracepoint.h>
#include <linux/types.h>
#include <net/net_namespace.h>

#include <uapi/linux/multicast_proxy.h>

TRACE_DEFINE_ENUM(MULTIC_TRACE_NO_ENTRY);
TRACE_DEFINE_ENUM(MULTIC_TRACE_NOT_LOCAL);
TRACE_DEFINE_ENUM(MULTIC_TRACE_NOMEM);

#define multic_trace_reason_name(reason)				\
	__print_symbolic(reason,					\
			 { MULTIC_TRACE_NO_ENTRY, "no_entry" },		\
			 { MULTIC_TRACE_NOT_LOCAL, "not_local" },	\
			 { MULTIC_TRACE_NOMEM, "nomem" })

/* A copy from @server:@sport to @daddr:@port restored to @group. */
TRACE_EVENT(multic_restore,
	TP_PROTO(const struct net *net, __be32 server, __be16 sport,
		 __be32 daddr, __be16 port, __be32 group, u8 protocol,
		 unsigned int len),

	TP_ARGS(net, server, sport, daddr, port, group, protocol, len),

	TP_STRUCT__entry(
		__field(u32, netns)
		__array(u8, server, 4)
		__array(u8, daddr, 4)
		__array(u8, group, 4)
		__field(u16, sport)
		__field(u16, port)
		__field(u8, protocol)
		__field(u32, len)
	),

	TP_fast_assign(
		__entry->netns = net->ns.inum;
		memcpy(__entry->server, &server, 4);
		memcpy(__entry->daddr, &daddr, 4);
		memcpy(__entry->group, &group, 4);
		__entry->sport = ntohs(sport);
		__entry->port = ntohs(port);
		__entry->protocol = protocol;
		__entry->len = len;
	),

	TP_printk("netns=%u server=%pI4:%u to=%pI4 port=%u group=%pI4 proto=%u len=%u",
		  __entry->netns, __entry->server, __entry->sport,
		  __entry->daddr, __entry->port, __entry->group,
		  __entry->protocol, __entry->len)
);

/*
 * A marked copy from @server:@sport to @daddr:@port left alone or dropped,
 * for @reason (enum multic_trace_reason); @group is the entry's, or 0.
 */
TRACE_EVENT(multic_skip,
	TP_PROTO(const struct net *net, __be32 server, __be16 sport,
		 __be32 daddr, __be16 port, __be32 group, int reason),

	TP_ARGS(net, server, sport, daddr, port, group, reason),

	TP_STRUCT__entry(
		__field(u32, netns)
		__array(u8, server, 4)
		__array(u8, daddr, 4)
		__array(u8, group, 4)
		__field(u16, sport)
		__field(u16, port)
		__field(int, reason)
	),

	TP_fast_assign(
		__entry->netns = net->ns.inum;
		memcpy(__entry->server, &server, 4);
		memcpy(__entry->daddr, &daddr, 4);
		memcpy(__entry->group, &group, 4);
		__entry->sport = ntohs(sport);
		__entry->port = ntohs(port);
		__entry->reason = reason;
	),

	TP_printk("netns=%u server=%pI4:%u to=%pI4 port=%u group=%pI4 reason=%s",
		  __entry->netns, __entry->server, __entry->sport,
		  __entry->daddr, __entry->port, __entry->group,
		  multic_trace_reason_name(__entry->reason))
);

/*
 * A unicast datagram from a configured @server to a configured @port whose
 * TOS is @tos, not the @marker: the network rewrote the marker, or the
 * server is not a multis sender.  @group is the entry's.
 */
TRACE_EVENT(multic_unmarked,
	TP_PROTO(const struct net *net, __be32 server, __be16 sport,
		 __be32 daddr, __be16 port, __be32 group, u8 tos, u8 marker),

	TP_ARGS(net, server, sport, daddr, port, group, tos, marker),

	TP_STRUCT__entry(
		__field(u32, netns)
		__array(u8, server, 4)
		__array(u8, daddr, 4)
		__array(u8, group, 4)
		__field(u16, sport)
		__field(u16, port)
		__field(u8, tos)
		__field(u8, marker)
	),

	TP_fast_assign(
		__entry->netns = net->ns.inum;
		memcpy(__entry->server, &server, 4);
		memcpy(__entry->daddr, &daddr, 4);
		memcpy(__entry->group, &group, 4);
		__entry->sport = ntohs(sport);
		__entry->port = ntohs(port);
		__entry->tos = tos;
		__entry->marker = marker;
	),

	TP_printk("netns=%u server=%pI4:%u to=%pI4 port=%u group=%pI4 tos=0x%02x marker=0x%02x",
		  __entry->netns, __entry->server, __entry->sport,
		  __entry->daddr, __entry->port, __entry->group,
		  __entry->tos, __entry->marker)
);

#endif /* _MULTIC_TRACE_H */

#undef TRACE_INCLUDE_PATH
#define TRACE_INCLUDE_PATH .
#undef TRACE_INCLUDE_FILE
#define TRACE_INCLUDE_FILE trace
#include <trace/define_trace.h>
