// SPDX-License-Identifier: GPL-2.0
/*
 * The data path: at PRE_ROUTING, right after defragmentation and before raw
 * and conntrack, turn a marked unicast copy back into the datagram it was
 * made from, so routing delivers it as multicast (or broadcast) input and
 * conntrack and the firewall see the restored destination.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include "compat.h"
#include "hook.h"
#include "multic.h"
#include "table.h"
#include "trace.h"

#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/lockdep.h>
#include <linux/netfilter.h>
#include <linux/netfilter_ipv4.h>
#include <linux/netfilter_ipv6.h>
#include <linux/skbuff.h>
#include <linux/udp.h>
#include <net/addrconf.h>
#include <net/checksum.h>
#include <net/dsfield.h>
#include <net/dst.h>
#include <net/dst_metadata.h>
#include <net/ip.h>
#include <net/ipv6.h>
#include <net/netfilter/ipv4/nf_defrag_ipv4.h>
#include <net/netfilter/ipv6/nf_defrag_ipv6.h>
#include <net/route.h>

#include <multicast_proxy_wire.h>

/*
 * The end of a restore, either family: @skb now has the group as its
 * destination and is counted, its @hdrs bytes of headers included.
 */
static void multic_restored(struct multic_net *mn, struct multic_entry *entry,
			    struct sk_buff *skb, u8 pkt_type, unsigned int hdrs)
{
	u32 packets;
	u64 bytes;

	/* What the packet now is on the link: sockets and nft see it so. */
	skb->pkt_type = pkt_type;
	/*
	 * A route looked up for the unicast destination is no longer ours;
	 * a metadata dst (collect_md tunnel, tc tunnel_key) is not a route
	 * but the tunnel's key, and input routing reads it as for any packet.
	 */
	if (skb_valid_dst(skb))
		skb_dst_drop(skb);

	mcp_wire_size(skb, hdrs, &packets, &bytes);
	multic_stats_restored(&entry->stats, packets, bytes);
	multic_stats_restored(&mn->stats, packets, bytes);
}

/*
 * @entry matched the copy in @skb, whose IP and @l4len bytes of L4 header
 * are linear.  Put the group back as its destination.
 */
static unsigned int multic_restore(struct multic_net *mn,
				   struct multic_entry *entry,
				   struct sk_buff *skb,
				   const struct nf_hook_state *state,
				   __be16 sport, __be16 port,
				   unsigned int l4len)
{
	unsigned int hdrlen = ip_hdrlen(skb);
	/* An IPv4 entry's group is IPv4-mapped: its last four bytes. */
	__be32 group = rcu_dereference(entry->group)->addr.s6_addr32[3];
	struct iphdr *iph = ip_hdr(skb);
	__be32 daddr = iph->daddr;

	/*
	 * Only what is really addressed to this host: never forwarded traffic.
	 * A broadcast group must be a broadcast address of the receiving
	 * interface's subnet (or 255.255.255.255): restored to anything else,
	 * the copy would be routed on, or forwarded, as unicast.
	 */
	if (inet_addr_type_dev_table(state->net, state->in, iph->daddr) != RTN_LOCAL ||
	    (!ipv4_is_multicast(group) &&
	     inet_addr_type_dev_table(state->net, state->in, group) != RTN_BROADCAST)) {
		multic_stats_not_local(&entry->stats);
		multic_stats_not_local(&mn->stats);
		trace_multic_skip(state->net, iph->saddr, sport, daddr, port,
				  group, MULTIC_TRACE_NOT_LOCAL);
		return NF_ACCEPT;
	}

	if (skb_ensure_writable(skb, hdrlen + l4len)) {
		multic_stats_drop_nomem(&entry->stats);
		multic_stats_drop_nomem(&mn->stats);
		trace_multic_skip(state->net, iph->saddr, sport, daddr, port,
				  group, MULTIC_TRACE_NOMEM);
		return NF_DROP;
	}
	iph = ip_hdr(skb);

	if (l4len) {
		struct udphdr *uh = (struct udphdr *)((u8 *)iph + hdrlen);

		mcp_udp_csum_daddr(skb, uh, iph->daddr, group);
	}
	csum_replace4(&iph->check, iph->daddr, group);
	iph->daddr = group;
	/*
	 * An advert left its router with TTL 255 (the sender's multis keeps
	 * it): a hop between the hosts lowered it, and the receiving VRRP
	 * would drop it as not sent on its link.  The entry says it was.
	 */
	if (iph->protocol == MCP_IPPROTO_VRRP && iph->ttl != MCP_VRRP_TTL) {
		csum_replace2(&iph->check, htons(iph->ttl << 8),
			      htons(MCP_VRRP_TTL << 8));
		iph->ttl = MCP_VRRP_TTL;
	}
	multic_restored(mn, entry, skb, ipv4_is_multicast(group) ?
			PACKET_MULTICAST : PACKET_BROADCAST, hdrlen + l4len);
	trace_multic_restore(state->net, iph->saddr, sport, daddr, port, group,
			     iph->protocol, skb->len);
	return NF_ACCEPT;
}

/*
 * Only while its tracepoint is enabled: is this unmarked datagram from a
 * configured server to a configured port?  A unicast copy whose marker the
 * network rewrote looks so; nothing else is looked up for unmarked packets.
 */
static void multic_trace_unmarked(struct net *net, struct sk_buff *skb,
				  u8 marker)
{
	const struct iphdr *iph = ip_hdr(skb);
	struct multic_entry *entry;
	__be16 sport = 0, port = 0;
	struct in6_addr server;

	if (ipv4_is_multicast(iph->daddr) || ipv4_is_lbcast(iph->daddr) ||
	    ip_is_fragment(iph))
		return;
	if (iph->protocol == IPPROTO_UDP) {
		const struct udphdr *uh;
		struct udphdr buf;

		uh = skb_header_pointer(skb, ip_hdrlen(skb), sizeof(buf), &buf);
		if (!uh)
			return;
		sport = uh->source;
		port = uh->dest;
	} else if (iph->protocol != MCP_IPPROTO_VRRP) {
		return;
	}
	ipv6_addr_set_v4mapped(iph->saddr, &server);
	entry = multic_table_lookup(multic_pernet(net), &server, port);
	if (entry)
		trace_multic_unmarked(net, iph->saddr, sport, iph->daddr, port,
				      rcu_dereference(entry->group)->addr.s6_addr32[3],
				      iph->tos, marker);
}

static unsigned int multic_hook(void *priv, struct sk_buff *skb,
				const struct nf_hook_state *state)
{
	const struct iphdr *iph = ip_hdr(skb);
	u8 marker = READ_ONCE(multic_marker_tos);
	struct multic_entry *entry;
	__be16 sport = 0, port = 0;
	struct in6_addr server;
	struct multic_net *mn;
	unsigned int l4len;

	/* The cheap checks first: every received IPv4 packet passes here. */
	if (iph->tos != marker) {
		if (trace_multic_unmarked_enabled())
			multic_trace_unmarked(state->net, skb, marker);
		return NF_ACCEPT;
	}
	if (iph->protocol == IPPROTO_UDP)
		l4len = sizeof(struct udphdr);
	else if (iph->protocol == MCP_IPPROTO_VRRP)
		l4len = 0;
	else
		return NF_ACCEPT;
	/* Defragmentation ran before us: a fragment here is not ours to edit. */
	if (ip_is_fragment(iph))
		return NF_ACCEPT;

	if (l4len) {
		const struct udphdr *uh;

		if (!pskb_may_pull(skb, ip_hdrlen(skb) + l4len))
			return NF_ACCEPT;
		iph = ip_hdr(skb);
		uh = (const struct udphdr *)((const u8 *)iph + ip_hdrlen(skb));
		sport = uh->source;
		port = uh->dest;
	}

	mn = multic_pernet(state->net);
	/* The table is keyed by IPv4-mapped addresses for IPv4. */
	ipv6_addr_set_v4mapped(iph->saddr, &server);
	entry = multic_table_lookup(mn, &server, port);
	if (!entry) {
		multic_stats_no_entry(&mn->stats);
		trace_multic_skip(state->net, iph->saddr, sport, iph->daddr, port,
				  0, MULTIC_TRACE_NO_ENTRY);
		return NF_ACCEPT;
	}
	return multic_restore(mn, entry, skb, state, sport, port, l4len);
}

/*
 * IPv6: @entry matched the UDP copy in @skb, whose headers up to the end of
 * the UDP header (@thoff + 8 bytes from the network header) are linear.
 * The same rules as IPv4; IPv6 has no broadcast and carries no VRRP here.
 */
static unsigned int multic_restore6(struct multic_net *mn,
				    struct multic_entry *entry,
				    struct sk_buff *skb,
				    const struct nf_hook_state *state,
				    unsigned int thoff)
{
	const struct in6_addr *group = &rcu_dereference(entry->group)->addr;
	struct ipv6hdr *ip6h = ipv6_hdr(skb);
	struct udphdr *uh;

	/* Only what is really addressed to this host: never forwarded traffic. */
	if (!ipv6_chk_addr(state->net, &ip6h->daddr, state->in, 0)) {
		multic_stats_not_local(&entry->stats);
		multic_stats_not_local(&mn->stats);
		return NF_ACCEPT;
	}
	if (skb_ensure_writable(skb, thoff + sizeof(*uh))) {
		multic_stats_drop_nomem(&entry->stats);
		multic_stats_drop_nomem(&mn->stats);
		return NF_DROP;
	}
	ip6h = ipv6_hdr(skb);
	uh = (struct udphdr *)((u8 *)ip6h + thoff);
	mcp_udp_csum_daddr6(skb, uh, &ip6h->daddr, group);
	ip6h->daddr = *group;
	multic_restored(mn, entry, skb, PACKET_MULTICAST, thoff + sizeof(*uh));
	return NF_ACCEPT;
}

/*
 * A marked IPv6 packet is ours if it is UDP after extension headers that
 * leave its destination alone (mcp_udp6_offset()); anything else is left
 * alone and counted NOT_UDP.  The tracepoints are IPv4's (their fields are
 * 4-byte addresses, part of their format): IPv6 copies are not traced.
 */
static unsigned int multic_hook6(void *priv, struct sk_buff *skb,
				 const struct nf_hook_state *state)
{
	const struct ipv6hdr *ip6h = ipv6_hdr(skb);
	u8 marker = READ_ONCE(multic_marker_tos);
	struct multic_entry *entry;
	const struct udphdr *uh;
	struct multic_net *mn;
	int thoff;

	/* The cheap check first: every received IPv6 packet passes here. */
	if (ipv6_get_dsfield(ip6h) != marker)
		return NF_ACCEPT;

	mn = multic_pernet(state->net);
	thoff = mcp_udp6_offset(skb);
	if (thoff < 0) {
		multic_stats_not_udp(&mn->stats);
		return NF_ACCEPT;
	}
	ip6h = ipv6_hdr(skb);
	uh = (const struct udphdr *)((const u8 *)ip6h + thoff);

	entry = multic_table_lookup(mn, &ip6h->saddr, uh->dest);
	if (!entry) {
		multic_stats_no_entry(&mn->stats);
		return NF_ACCEPT;
	}
	return multic_restore6(mn, entry, skb, state, thoff);
}

/* One hook per family, each registered while its family has entries. */
static const struct nf_hook_ops multic_hook_ops[MULTIC_FAMILIES] = {
	[MULTIC_IPV4] = {
		.hook		= multic_hook,
		.pf		= NFPROTO_IPV4,
		.hooknum	= NF_INET_PRE_ROUTING,
		.priority	= NF_IP_PRI_CONNTRACK_DEFRAG + 1,
	},
	[MULTIC_IPV6] = {
		.hook		= multic_hook6,
		.pf		= NFPROTO_IPV6,
		.hooknum	= NF_INET_PRE_ROUTING,
		.priority	= NF_IP6_PRI_CONNTRACK_DEFRAG + 1,
	},
};

/* Copies larger than the MTU must reach the hook reassembled. */
static int multic_defrag_enable(struct net *net, enum multic_family family)
{
	if (family == MULTIC_IPV4)
		return nf_defrag_ipv4_enable(net);
	return nf_defrag_ipv6_enable(net);
}

static void multic_defrag_disable(struct net *net, enum multic_family family)
{
	if (family == MULTIC_IPV4)
		nf_defrag_ipv4_disable(net);
	else
		nf_defrag_ipv6_disable(net);
}

/*
 * A family's hook, and its defragmentation, are in a namespace only while
 * it has at least one entry of that family: a namespace that never
 * configured multic pays nothing, an IPv4-only receiver's IPv6 traffic is
 * not reassembled on its behalf (nor the reverse), and loading the module
 * (which generic netlink does for any user who asks for the family)
 * changes no namespace.  Every change holds multic_net.lock; the data path
 * never looks at ->hooked.
 */
int multic_hook_attach(struct net *net, struct multic_net *mn,
		       enum multic_family family)
{
	int ret;

	lockdep_assert_held(&mn->lock);
	if (mn->hooked[family])
		return 0;
	ret = multic_defrag_enable(net, family);
	if (ret)
		return ret;
	ret = nf_register_net_hook(net, &multic_hook_ops[family]);
	if (ret) {
		multic_defrag_disable(net, family);
		return ret;
	}
	mn->hooked[family] = true;
	return 0;
}

/* Waits for the packets inside the hook (an RCU grace period). */
static void multic_hook_detach_family(struct net *net, struct multic_net *mn,
				      enum multic_family family)
{
	lockdep_assert_held(&mn->lock);
	if (!mn->hooked[family])
		return;
	nf_unregister_net_hook(net, &multic_hook_ops[family]);
	multic_defrag_disable(net, family);
	mn->hooked[family] = false;
}

/* Both families' hooks go (namespace exit). */
void multic_hook_detach(struct net *net, struct multic_net *mn)
{
	multic_hook_detach_family(net, mn, MULTIC_IPV4);
	multic_hook_detach_family(net, mn, MULTIC_IPV6);
}

/* After every change: a family's last entry is gone, so are its hook and defrag. */
void multic_hook_sync(struct net *net, struct multic_net *mn)
{
	enum multic_family family;

	for (family = 0; family < MULTIC_FAMILIES; family++)
		if (!mn->family_entries[family])
			multic_hook_detach_family(net, mn, family);
}
