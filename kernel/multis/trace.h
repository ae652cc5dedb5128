/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Tracepoints of the sending side (tracefs events/multis): each datagram
 * fanned out, and each copy of it not sent, with the reason.  Free while
 * disabled (a static branch); recorded by perf, trace-cmd and
 * `multicast-proxy trace`.  Addresses are in network byte order, ports in
 * host order; netns is the inode number of the sending namespace (as in
 * /proc/PID/ns/net).
 */
#undef TRACE_SYSTEM
#define TRACE_SYSTEM multis

#if !defined(_MULTIS_TRACE_H) || defined(TRACE_HEADER_MULTI_READ)
#define _MULTIS_TRACE_H

#include <linux/tracepoint.h>
#include <linux/types.h>
#include <net/net_namespace.h>

#include <uapi/linux/multicast_proxy.h>

TRACE_DEFINE_ENUM(MULTIS_TRACE_NO_ROUTE);
TRACE_DEFINE_ENUM(MULTIS_TRACE_NOMEM);
TRACE_DEFINE_ENUM(MULTIS_TRACE_TOO_BIG);
TRACE_DEFINE_ENUM(MULTIS_TRACE_POLICY);
TRACE_DEFINE_ENUM(MULTIS_TRACE_XMIT);

#define multis_trace_reason_name(reason)				\
	__print_symbolic(reason,					\
			 { MULTIS_TRACE_NO_ROUTE, "no_route" },		\
			 { MULTIS_TRACE_NOMEM, "nomem" },		\
			 { MULTIS_TRACE_TOO_BIG, "too_big" },		\
			 { MULTIS_TRACE_POLICY, "policy" },		\
			 { MULTIS_TRACE_XMIT, "xmit" })

/*
 * A datagram to @group sent from @saddr:@sport to @dport, @len IP bytes,
 * fanned out to @members members of which @sent copies were handed to the
 * output path (a multis_not_sent event on this CPU before it for each other).
 */
TRACE_EVENT(multis_fanout,
	TP_PROTO(const struct net *net, __be32 group, __be32 saddr,
		 __be16 sport, __be16 dport, u8 protocol, unsigned int len,
		 unsigned int members, unsigned int sent),

	TP_ARGS(net, group, saddr, sport, dport, protocol, len, members, sent),

	TP_STRUCT__entry(
		__field(u32, netns)
		__array(u8, group, 4)
		__array(u8, saddr, 4)
		__field(u16, sport)
		__field(u16, dport)
		__field(u8, protocol)
		__field(u32, len)
		__field(u32, members)
		__field(u32, sent)
	),

	TP_fast_assign(
		__entry->netns = net->ns.inum;
		memcpy(__entry->group, &group, 4);
		memcpy(__entry->saddr, &saddr, 4);
		__entry->sport = ntohs(sport);
		__entry->dport = ntohs(dport);
		__entry->protocol = protocol;
		__entry->len = len;
		__entry->members = members;
		__entry->sent = sent;
	),

	TP_printk("netns=%u group=%pI4 port=%u from=%pI4:%u proto=%u len=%u members=%u sent=%u",
		  __entry->netns, __entry->group, __entry->dport,
		  __entry->saddr, __entry->sport, __entry->protocol,
		  __entry->len, __entry->members, __entry->sent)
);

/*
 * The copy of a datagram to @group for @member was not sent, for @reason
 * (enum multis_trace_reason); @err is the output path's error, if any.
 */
TRACE_EVENT(multis_not_sent,
	TP_PROTO(const struct net *net, __be32 group, __be32 member,
		 __be32 saddr, __be16 sport, __be16 dport, int reason, int err),

	TP_ARGS(net, group, member, saddr, sport, dport, reason, err),

	TP_STRUCT__entry(
		__field(u32, netns)
		__array(u8, group, 4)
		__array(u8, member, 4)
		__array(u8, saddr, 4)
		__field(u16, sport)
		__field(u16, dport)
		__field(int, reason)
		__field(int, err)
	),

	TP_fast_assign(
		__entry->netns = net->ns.inum;
		memcpy(__entry->group, &group, 4);
		memcpy(__entry->member, &member, 4);
		memcpy(__entry->saddr, &saddr, 4);
		__entry->sport = ntohs(sport);
		__entry->dport = ntohs(dport);
		__entry->reason = reason;
		__entry->err = err;
	),

	TP_printk("netns=%u group=%pI4 port=%u from=%pI4:%u member=%pI4 reason=%s err=%d",
		  __entry->netns, __entry->group, __entry->dport,
		  __entry->saddr, __entry->sport, __entry->member,
		  multis_trace_reason_name(__entry->reason), __entry->err)
);

#endif /* _MULTIS_TRACE_H */

#undef TRACE_INCLUDE_PATH
#define TRACE_INCLUDE_PATH .
#undef TRACE_INCLUDE_FILE
#define TRACE_INCLUDE_FILE trace
#include <trace/define_trace.h>
