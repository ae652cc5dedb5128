// SPDX-License-Identifier: GPL-2.0
/*
 * The data path: a LOCAL_OUT hook that copies every datagram sent to a
 * configured group once per member, as unicast to that member.
 *
 * The hook runs last at LOCAL_OUT, so only what the host's OUTPUT policy
 * (raw, mangle, nat, filter, security) let out is fanned out.  Each copy gets
 * daddr = member, TOS = the marker, TTL at least MULTIS_MIN_TTL and correct
 * checksums; it is owned by the sending socket, routed as a unicast from it
 * would be (bound device or L3 domain, TOS, mark, uid) and sent with
 * ip_local_out().  The original always continues unchanged.
 *
 * IPv6 has its own LOCAL_OUT hook with the same rules in IPv6's words: the
 * marker in the Traffic Class, the hop limit raised as the TTL is (0 stays
 * on the host), the mandatory UDP checksum updated, routed with
 * ip6_route_output() and sent with ip6_local_out().  Both hooks look up the
 * one group table (IPv4 groups IPv4-mapped) and share the counters.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include "compat.h"
#include "group.h"
#include "hook.h"
#include "multis.h"
#include "trace.h"

#include <linux/build_bug.h>
#include <linux/ip.h>
#include <linux/local_lock.h>
#include <linux/lockdep.h>
#include <linux/netfilter.h>
#include <linux/netfilter_ipv4.h>
#include <linux/netfilter_ipv6.h>
#include <linux/percpu.h>
#include <linux/sched.h>
#include <linux/skbuff.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <net/checksum.h>
#include <net/dst.h>
#include <net/dst_cache.h>
#include <net/inet_ecn.h>
#include <net/inet_sock.h>
#include <net/ip.h>
#include <net/ip6_route.h>
#include <net/ipv6.h>
#include <net/l3mdev.h>
#include <net/route.h>
#include <net/sock.h>

#include <multicast_proxy_wire.h>
#include <uapi/linux/multicast_proxy.h>

/* Compared with memcmp(): no implicit padding (group.h). */
static_assert(sizeof(struct multis_flow_key) == 24);

/* The least TTL a copy leaves with: it crosses the VPC, not one link. */
#define MULTIS_MIN_TTL	64

/*
 * The task sending our copies on this CPU, from the first member to the
 * last, with BH disabled (so it stays on this CPU meanwhile).  A packet that
 * reaches the hook from that task is one of our copies, or something their
 * transmission generated, and passes untouched.  Copies cannot be fanned out
 * again anyway (a member is never a group); this makes recursion impossible
 * even so, through a tunnel to a multicast underlay too.
 *
 * The owner is a task, not a per-CPU "busy" flag, for PREEMPT_RT, where a
 * BH-disabled section can be preempted: another task sending on this CPU
 * meanwhile must not have its datagrams taken for our copies.  The kernel's
 * nf_dup keeps its recursion counter in the task on RT for the same reason.
 * bh_lock serialises the sections of two tasks on one CPU where disabling
 * BH alone does not (RT); elsewhere it is a lockdep annotation only.
 */
struct multis_xmit_guard {
	local_lock_t bh_lock;
	struct task_struct *owner;
};

static DEFINE_PER_CPU(struct multis_xmit_guard, multis_xmit_guard) = {
	.bh_lock = INIT_LOCAL_LOCK(bh_lock),
};

/* What every copy of one datagram shares, computed once from the original. */
struct multis_datagram {
	struct sk_buff *skb;
	struct sock *owner;	/* skb->sk, a full socket, or NULL */
	struct sock *sk;	/* the socket sending it, full, or NULL */
	__be32 group;		/* IPv4 */
	struct in6_addr saddr6;	/* IPv6 */
	bool v6;
	unsigned int thoff;	/* IPv6: the UDP header's network offset */
	/*
	 * The route lookup's: source (IPv4; 0 for IPv6), ports, protocol, TOS
	 * without the ECN bits, bound device or L3 master (or 0), mark, uid.
	 */
	struct multis_flow_key key;
	u8 marker;		/* the copies' TOS */
	unsigned int hdrlen;	/* network + transport header, to edit */
	u32 packets;		/* on the wire: the GSO segments */
	u64 bytes;		/* IP bytes of those packets */
};

/* Headers repeated in every segment of a GSO skb. */
static unsigned int multis_gso_hdrlen(const struct sk_buff *skb,
				      unsigned int hdrlen)
{
	if (!skb->encapsulation)
		return hdrlen;
	if (skb_shinfo(skb)->gso_type & (SKB_GSO_TCPV4 | SKB_GSO_TCPV6))
		return skb_inner_transport_offset(skb) -
		       skb_network_offset(skb) + inner_tcp_hdrlen(skb);
	return skb_inner_transport_offset(skb) - skb_network_offset(skb) +
	       sizeof(struct udphdr);
}

static struct sock *multis_full_sk(struct sock *sk)
{
	return sk && sk_fullsock(sk) ? sk : NULL;
}

static void multis_datagram_init(struct multis_datagram *dg, struct net *net,
				 struct sock *sk, struct sk_buff *skb,
				 unsigned int l4len)
{
	const struct iphdr *iph = ip_hdr(skb);

	/*
	 * The owner of the copies is the original's (it is charged to the
	 * application's socket, UDP or raw; the original holds a reference to
	 * it until it is freed, after this hook).  The socket the stack sends
	 * the original for is @sk, the one passed to ip_local_out(): the same
	 * socket, except for a tunnel's outer packet, which its tunnel's
	 * kernel socket sends and routes.  The copies are sent for @sk too,
	 * so that what depends on it (route, PMTU mode, cgroup egress, which
	 * runs only where it is skb->sk) is as for the original.
	 */
	dg->owner = multis_full_sk(skb->sk);
	dg->sk = multis_full_sk(sk);
	dg->skb = skb;
	dg->v6 = false;
	dg->group = iph->daddr;
	memset(&dg->key, 0, sizeof(dg->key));
	dg->key.saddr = iph->saddr;
	dg->key.protocol = iph->protocol;
	dg->key.tos = iph->tos & ~INET_ECN_MASK;
	dg->marker = READ_ONCE(multis_marker_tos);
	dg->key.mark = skb->mark;
	dg->key.uid = sock_net_uid(net, dg->sk);
	/*
	 * The output interface a unicast from that socket would be given
	 * (udp_sendmsg(): the bound device, else IP_UNICAST_IF), else the L3
	 * domain (VRF) the original leaves by: the copies are looked up in
	 * the same routing table as the original, not in the main one.
	 */
	dg->key.oif = 0;
	if (dg->sk) {
		dg->key.oif = READ_ONCE(dg->sk->sk_bound_dev_if);
		if (!dg->key.oif)
			dg->key.oif = READ_ONCE(inet_sk(dg->sk)->uc_index);
	}
	if (!dg->key.oif)
		dg->key.oif = l3mdev_master_ifindex_rcu(skb_dst(skb)->dev);
	dg->hdrlen = skb_network_offset(skb) + iph->ihl * 4 + l4len;
	if (dg->key.protocol == IPPROTO_UDP) {
		const struct udphdr *uh;
		struct udphdr buf;

		uh = skb_header_pointer(skb, skb_network_offset(skb) +
					iph->ihl * 4, sizeof(buf), &buf);
		if (uh) {
			dg->key.sport = uh->source;
			dg->key.dport = uh->dest;
		}
	}

	mcp_wire_size(skb, multis_gso_hdrlen(skb, iph->ihl * 4 + l4len),
		      &dg->packets, &dg->bytes);
}

/*
 * The route of the copy to @member (BH disabled, bh_lock held): this CPU's
 * cached one if it was looked up for the same flow key and dst_check()
 * still accepts it, else a full lookup, which then replaces the cache.
 */
static struct rtable *multis_route(struct net *net,
				   const struct multis_datagram *dg,
				   struct multis_member *member)
{
	struct multis_flow_key *cached = this_cpu_ptr(member->route_key);
	const struct multis_flow_key *key = &dg->key;
	struct flowi4 fl4;
	struct rtable *rt;
	__be32 saddr;

	if (!memcmp(cached, key, sizeof(*key))) {
		rt = dst_cache_get_ip4(&member->dst_cache, &saddr);
		if (rt)
			return rt;
	}

	/*
	 * Our own lookup, as a unicast datagram from the original's socket
	 * and source to the member would get: same output interface or L3
	 * domain, TOS, mark, uid and ports.  ANYSRC keeps the source the
	 * original was allowed to use even if it is not (or no longer) a
	 * local address.
	 */
	flowi4_init_output(&fl4, key->oif, key->mark, key->tos,
			   RT_SCOPE_UNIVERSE, key->protocol, FLOWI_FLAG_ANYSRC,
			   member->addr.s6_addr32[3], key->saddr, key->dport,
			   key->sport, key->uid);
	rt = ip_route_output_key(net, &fl4);
	if (IS_ERR(rt))
		return rt;
	/* The key and its route together: both this CPU's, BH disabled. */
	dst_cache_set_ip4(&member->dst_cache, &rt->dst, fl4.saddr);
	*cached = *key;
	return rt;
}

/*
 * A private copy of the original's headers (the payload is shared, read
 * only), rewritten for @daddr.  NULL when out of memory.
 */
static struct sk_buff *multis_copy(const struct multis_datagram *dg,
				   __be32 daddr)
{
	struct sk_buff *skb;
	struct iphdr *iph;

	skb = pskb_copy(dg->skb, GFP_ATOMIC);
	if (!skb)
		return NULL;
	if (!pskb_may_pull(skb, dg->hdrlen)) {
		kfree_skb(skb);
		return NULL;
	}
	/* A new flow for conntrack, not part of the original's. */
	nf_reset_ct(skb);
	skb_dst_drop(skb);

	iph = ip_hdr(skb);
	if (iph->protocol == IPPROTO_UDP) {
		struct udphdr *uh = (struct udphdr *)((u8 *)iph +
						      iph->ihl * 4);

		/* The pseudo header changes with daddr (also for UDP GSO). */
		mcp_udp_csum_daddr(skb, uh, iph->daddr, daddr);
	}
	/* VRRP: its checksum has no pseudo header (v2), or the receiving
	 * side restores the group address before anyone checks it (v3).
	 */
	iph->daddr = daddr;
	iph->tos = dg->marker;
	if (iph->ttl < MULTIS_MIN_TTL)
		iph->ttl = MULTIS_MIN_TTL;
	ip_send_check(iph);
	return skb;
}

/*
 * A copy the stack would refuse for its size: DF set by a sender that does
 * not let the stack fragment anyway (IP_PMTUDISC_DO or _PROBE: ignore_df
 * clear), larger than the MTU the output path would use for it
 * (ip_finish_output(): ip_skb_dst_mtu(), per GSO segment for a GSO skb).
 * ip_fragment() would drop it with -EMSGSIZE.
 */
static bool multis_too_big(const struct multis_datagram *dg,
			   const struct sk_buff *skb)
{
	unsigned int mtu;

	if (!(ip_hdr(skb)->frag_off & htons(IP_DF)) || skb->ignore_df)
		return false;
	mtu = ip_skb_dst_mtu(dg->sk, skb);
	if (skb_is_gso(skb))
		return !skb_gso_validate_network_len(skb, mtu);
	return skb->len > mtu;
}

/* The tracepoints carry IPv4 addresses (their ABI): IPv6 is not traced. */
static void multis_trace_not_sent(struct net *net,
				  const struct multis_datagram *dg,
				  const struct multis_member *member,
				  int reason, int err)
{
	if (!dg->v6)
		trace_multis_not_sent(net, dg->group, member->addr.s6_addr32[3],
				      dg->key.saddr, dg->key.sport,
				      dg->key.dport, reason, err);
}

/*
 * Send one copy to @member (BH disabled, bh_lock held).  Adds the member's
 * counters to @delta, the group's tally for this datagram.  True when the
 * output path took the copy.
 */
static bool multis_xmit(struct net *net, const struct multis_datagram *dg,
			struct multis_member *member, u64 *delta)
{
	u64 mdelta[MULTIS_CTR_MEMBER_N] = {};
	struct sk_buff *skb;
	struct rtable *rt;
	bool sent = false;
	unsigned int i;
	int err;

	rt = multis_route(net, dg, member);
	if (IS_ERR(rt)) {
		mdelta[MULTIS_CTR_DROP_NO_ROUTE] = 1;
		multis_trace_not_sent(net, dg, member, MULTIS_TRACE_NO_ROUTE,
				      PTR_ERR(rt));
		goto count;
	}
	skb = multis_copy(dg, member->addr.s6_addr32[3]);
	if (!skb) {
		ip_rt_put(rt);
		mdelta[MULTIS_CTR_DROP_NOMEM] = 1;
		multis_trace_not_sent(net, dg, member, MULTIS_TRACE_NOMEM,
				      -ENOMEM);
		goto count;
	}
	skb_dst_set(skb, &rt->dst);
	/*
	 * Owned by the sender (pskb_copy() does not take the owner), as
	 * ip_fragment() does it for fragments: charged to its send buffer,
	 * and seen as its packet by the output path: `-m owner`, nft `meta
	 * skuid` and `socket cgroupv2`, cgroup BPF egress, SELinux, and its
	 * PMTU mode.
	 */
	if (dg->owner)
		skb_set_owner_w(skb, dg->owner);

	if (multis_too_big(dg, skb)) {
		kfree_skb(skb);
		mdelta[MULTIS_CTR_DROP_TOO_BIG] = 1;
		multis_trace_not_sent(net, dg, member, MULTIS_TRACE_TOO_BIG,
				      -EMSGSIZE);
		goto count;
	}

	/*
	 * Counted from the original's figures: once handed to ip_local_out()
	 * the copy belongs to the stack and may be gone when it returns.
	 */
	mdelta[MULTIS_CTR_PACKETS] = dg->packets;
	mdelta[MULTIS_CTR_BYTES] = dg->bytes;

	/*
	 * A netfilter or cgroup egress drop is -EPERM: the host's policy; a
	 * qdisc's drop NET_XMIT_DROP, a neighbour's failure an errno.
	 */
	err = ip_local_out(net, dg->sk, skb);
	if (net_xmit_eval(err)) {
		mdelta[MULTIS_CTR_DROP_XMIT] = 1;
		multis_trace_not_sent(net, dg, member,
				      err == -EPERM ? MULTIS_TRACE_POLICY :
						      MULTIS_TRACE_XMIT,
				      err);
	} else {
		sent = true;
	}

count:
	multis_stats_add(&member->stats, mdelta);
	for (i = 0; i < MULTIS_CTR_MEMBER_N; i++)
		delta[i] += mdelta[i];
	return sent;
}

/* IPv4 only, as multis_trace_not_sent(). */
static void multis_trace_fanout(struct net *net,
				const struct multis_datagram *dg,
				unsigned int count, unsigned int sent)
{
	if (!dg->v6)
		trace_multis_fanout(net, dg->group, dg->key.saddr,
				    dg->key.sport, dg->key.dport,
				    dg->key.protocol, dg->skb->len, count,
				    sent);
}

static void multis_datagram_init6(struct multis_datagram *dg,
				  struct net *net, struct sock *sk,
				  struct sk_buff *skb, unsigned int thoff)
{
	const struct ipv6hdr *ip6h = ipv6_hdr(skb);
	const struct udphdr *uh;

	dg->owner = multis_full_sk(skb->sk);
	dg->sk = multis_full_sk(sk);
	dg->skb = skb;
	dg->v6 = true;
	dg->group = 0;
	dg->saddr6 = ip6h->saddr;
	memset(&dg->key, 0, sizeof(dg->key));
	dg->key.protocol = IPPROTO_UDP;
	dg->marker = READ_ONCE(multis_marker_tos);
	dg->key.mark = skb->mark;
	dg->key.uid = sock_net_uid(net, dg->sk);
	/* As for IPv4: the bound device, else the L3 domain left by. */
	dg->key.oif = dg->sk ? READ_ONCE(dg->sk->sk_bound_dev_if) : 0;
	if (!dg->key.oif)
		dg->key.oif = l3mdev_master_ifindex_rcu(skb_dst(skb)->dev);
	dg->thoff = thoff;
	dg->hdrlen = thoff + sizeof(struct udphdr);
	/* The caller has checked that the UDP header is there. */
	uh = (const struct udphdr *)(skb_network_header(skb) + thoff);
	dg->key.sport = uh->source;
	dg->key.dport = uh->dest;
	mcp_wire_size(skb, multis_gso_hdrlen(skb, dg->hdrlen),
		      &dg->packets, &dg->bytes);
}

/* The IPv6 copy for @daddr: the same edits in IPv6's header. */
static struct sk_buff *multis_copy6(const struct multis_datagram *dg,
				    const struct in6_addr *daddr)
{
	struct ipv6hdr *ip6h;
	struct sk_buff *skb;
	struct udphdr *uh;

	skb = pskb_copy(dg->skb, GFP_ATOMIC);
	if (!skb)
		return NULL;
	if (!pskb_may_pull(skb, skb_network_offset(skb) + dg->hdrlen)) {
		kfree_skb(skb);
		return NULL;
	}
	nf_reset_ct(skb);
	skb_dst_drop(skb);

	ip6h = ipv6_hdr(skb);
	uh = (struct udphdr *)(skb_network_header(skb) + dg->thoff);
	mcp_udp_csum_daddr6(skb, uh, &ip6h->daddr, daddr);
	ip6h->daddr = *daddr;
	/* The whole Traffic Class is the marker (flow label kept). */
	ipv6_change_dsfield(ip6h, 0, dg->marker);
	if (ip6h->hop_limit < MULTIS_MIN_TTL)
		ip6h->hop_limit = MULTIS_MIN_TTL;
	return skb;
}

/*
 * IPv6 fragments only at the source: a sender that let the stack fragment
 * (IPV6_PMTUDISC below DO: ignore_df) has larger copies fragmented, one
 * that did not would have them refused by ip6_fragment().
 */
static bool multis_too_big6(const struct sk_buff *skb)
{
	unsigned int mtu;

	if (skb->ignore_df)
		return false;
	mtu = ip6_skb_dst_mtu((struct sk_buff *)skb);
	if (skb_is_gso(skb))
		return !skb_gso_validate_network_len(skb, mtu);
	return skb->len > mtu;
}

static bool multis_xmit6(struct net *net, const struct multis_datagram *dg,
			 struct multis_member *member, u64 *delta)
{
	u64 mdelta[MULTIS_CTR_MEMBER_N] = {};
	struct dst_entry *dst;
	struct flowi6 fl6 = {};
	struct sk_buff *skb;
	bool sent = false;
	unsigned int i;
	int err;

	/* A full lookup per copy: the dst cache is IPv4's (group.h). */
	fl6.flowi6_oif = dg->key.oif;
	fl6.flowi6_mark = dg->key.mark;
	fl6.flowi6_uid = dg->key.uid;
	fl6.flowi6_proto = IPPROTO_UDP;
	fl6.daddr = member->addr;
	fl6.saddr = dg->saddr6;
	fl6.fl6_sport = dg->key.sport;
	fl6.fl6_dport = dg->key.dport;
	dst = ip6_route_output(net, dg->sk, &fl6);
	if (dst->error) {
		dst_release(dst);
		mdelta[MULTIS_CTR_DROP_NO_ROUTE] = 1;
		goto count;
	}
	skb = multis_copy6(dg, &member->addr);
	if (!skb) {
		dst_release(dst);
		mdelta[MULTIS_CTR_DROP_NOMEM] = 1;
		goto count;
	}
	skb_dst_set(skb, dst);
	if (dg->owner)
		skb_set_owner_w(skb, dg->owner);
	if (multis_too_big6(skb)) {
		kfree_skb(skb);
		mdelta[MULTIS_CTR_DROP_TOO_BIG] = 1;
		goto count;
	}
	mdelta[MULTIS_CTR_PACKETS] = dg->packets;
	mdelta[MULTIS_CTR_BYTES] = dg->bytes;
	err = ip6_local_out(net, dg->sk, skb);
	if (net_xmit_eval(err))
		mdelta[MULTIS_CTR_DROP_XMIT] = 1;
	else
		sent = true;

count:
	multis_stats_add(&member->stats, mdelta);
	for (i = 0; i < MULTIS_CTR_MEMBER_N; i++)
		delta[i] += mdelta[i];
	return sent;
}

static void multis_fanout(struct net *net, struct sock *sk,
			  struct multis_net *pn, struct multis_group *group,
			  struct sk_buff *skb, unsigned int l4len, bool v6)
{
	const struct multis_members *members;
	struct multis_datagram dg;
	u64 delta[MULTIS_CTR_N] = {};
	unsigned int count = 0;
	unsigned int sent = 0;
	unsigned int i;

	members = rcu_dereference(group->members);
	if (members)
		count = members->count;

	/* One BH-disabled section for the whole datagram, counters included. */
	local_bh_disable();
	local_lock_nested_bh(&multis_xmit_guard.bh_lock);
	if (count) {
		if (v6)
			multis_datagram_init6(&dg, net, sk, skb, l4len);
		else
			multis_datagram_init(&dg, net, sk, skb, l4len);
		delta[MULTIS_CTR_DATAGRAMS] = 1;
		__this_cpu_write(multis_xmit_guard.owner, current);
		for (i = 0; i < count; i++)
			sent += v6 ? multis_xmit6(net, &dg, members->member[i],
						  delta) :
				     multis_xmit(net, &dg, members->member[i],
						 delta);
		__this_cpu_write(multis_xmit_guard.owner, NULL);
		multis_trace_fanout(net, &dg, count, sent);
	} else {
		delta[MULTIS_CTR_DROP_NO_MEMBER] = 1;
		/*
		 * Nothing to copy: the datagram's figures only for its event,
		 * which IPv6 has not.
		 */
		if (!v6 && trace_multis_fanout_enabled()) {
			multis_datagram_init(&dg, net, sk, skb, l4len);
			multis_trace_fanout(net, &dg, 0, 0);
		}
	}
	multis_stats_add(&group->stats, delta);
	multis_stats_add(&pn->stats, delta);
	local_unlock_nested_bh(&multis_xmit_guard.bh_lock);
	local_bh_enable();
}

static unsigned int multis_local_out(void *priv, struct sk_buff *skb,
				     const struct nf_hook_state *state)
{
	struct rtable *rt = skb_rtable(skb);
	struct multis_group *group;
	const struct iphdr *iph;
	struct in6_addr daddr;
	struct multis_net *pn;
	unsigned int l4len;

	/*
	 * The cheapest tests first, before anything else per packet: only a
	 * datagram to a multicast address, or routed as a broadcast, is fanned
	 * out, whatever the table holds (a broadcast group is a broadcast
	 * address, never a unicast one), so unicast, TCP included, pays two
	 * compares and never reaches the lookup.
	 *
	 * A multicast destination is told by its address, not by the route's
	 * type: __mkroute_output() hands out the route cached in the nexthop,
	 * whatever type it was made for, so a datagram sent with an output
	 * interface (IP_MULTICAST_IF) through a route such as 224.0.0.0/4 dev
	 * eth0 gets a unicast route when a unicast route with the same nexthop
	 * (10.0.1.0/24 dev eth0, the members' own) filled that cache, and it
	 * is sent as one: its TTL 0 does not keep it on the host either.
	 * Broadcast routes are never cached so: their type is always right.
	 */
	iph = ip_hdr(skb);
	if (!rt || (!ipv4_is_multicast(iph->daddr) &&
		    rt->rt_type != RTN_BROADCAST))
		return NF_ACCEPT;

	/* One of our copies (see struct multis_xmit_guard). */
	if (this_cpu_read(multis_xmit_guard.owner) == current)
		return NF_ACCEPT;

	switch (iph->protocol) {
	case IPPROTO_UDP:
		l4len = sizeof(struct udphdr);
		break;
	case MCP_IPPROTO_VRRP:
		l4len = 0;
		break;
	default:
		return NF_ACCEPT;
	}
	/*
	 * A multicast with TTL 0 must not leave the host (as ip_mc_output()
	 * has it): only its local loopback copy is delivered.
	 */
	if (ipv4_is_multicast(iph->daddr) && !iph->ttl)
		return NF_ACCEPT;
	/*
	 * Fragments are left alone: at LOCAL_OUT a datagram is still whole
	 * (one skb, maybe with a frag_list); only a raw socket sends
	 * fragments, and copying them one by one would rewrite the UDP
	 * header of the first only.
	 */
	if (ip_is_fragment(iph))
		return NF_ACCEPT;

	/* nf_hook() holds rcu_read_lock(). */
	pn = multis_pernet(state->net);
	ipv6_addr_set_v4mapped(iph->daddr, &daddr);
	group = multis_group_lookup_rcu(pn, &daddr);
	if (!group)
		return NF_ACCEPT;
	if (iph->protocol == MCP_IPPROTO_VRRP &&
	    !(group->flags & MULTIS_GROUP_F_VRRP))
		return NF_ACCEPT;
	/* Malformed (a raw socket's): nothing we could copy correctly. */
	if (iph->ihl < 5 || skb->len < iph->ihl * 4 + l4len)
		return NF_ACCEPT;

	multis_fanout(state->net, state->sk, pn, group, skb, l4len, false);
	return NF_ACCEPT;
}

/*
 * IPv6: a UDP datagram to a multicast group, after extension headers that
 * leave the destination alone (mcp_udp6_offset()); anything else (a routing
 * header, a raw socket's fragments) is left alone.
 */
static unsigned int multis_local_out6(void *priv, struct sk_buff *skb,
				      const struct nf_hook_state *state)
{
	const struct ipv6hdr *ip6h = ipv6_hdr(skb);
	struct multis_group *group;
	struct multis_net *pn;
	int thoff;

	/*
	 * As for IPv4, the cheapest test first: only a multicast destination
	 * goes further (IPv6 has no broadcast), so unicast pays one test.
	 * Hop limit 0: this host only (the loopback copy).
	 */
	if (!ipv6_addr_is_multicast(&ip6h->daddr) || !ip6h->hop_limit ||
	    !skb_dst(skb))
		return NF_ACCEPT;
	/* One of our copies (see struct multis_xmit_guard). */
	if (this_cpu_read(multis_xmit_guard.owner) == current)
		return NF_ACCEPT;
	thoff = mcp_udp6_offset(skb);
	if (thoff < 0)
		return NF_ACCEPT;

	pn = multis_pernet(state->net);
	group = multis_group_lookup_rcu(pn, &ipv6_hdr(skb)->daddr);
	if (!group)
		return NF_ACCEPT;
	multis_fanout(state->net, state->sk, pn, group, skb, thoff, true);
	return NF_ACCEPT;
}

static const struct nf_hook_ops multis_nf_ops[] = {
	{
		.hook		= multis_local_out,
		.pf		= NFPROTO_IPV4,
		.hooknum	= NF_INET_LOCAL_OUT,
		/* After every OUTPUT chain: only what the host lets out. */
		.priority	= NF_IP_PRI_LAST,
	}, {
		.hook		= multis_local_out6,
		.pf		= NFPROTO_IPV6,
		.hooknum	= NF_INET_LOCAL_OUT,
		.priority	= NF_IP6_PRI_LAST,
	},
};

/*
 * The hook is in a namespace only while it has at least one group: a
 * namespace that never configured multis pays nothing for it, and loading
 * the module changes no namespace.  Every change holds multis_net.lock; the
 * data path never looks at ->hooked.
 */
int multis_hook_attach(struct net *net, struct multis_net *pn)
{
	int ret;

	lockdep_assert_held(&pn->lock);
	if (pn->hooked)
		return 0;
	ret = nf_register_net_hooks(net, multis_nf_ops,
				    ARRAY_SIZE(multis_nf_ops));
	if (!ret)
		pn->hooked = true;
	return ret;
}

/* Waits for the packets inside the hook (an RCU grace period). */
void multis_hook_detach(struct net *net, struct multis_net *pn)
{
	lockdep_assert_held(&pn->lock);
	if (!pn->hooked)
		return;
	nf_unregister_net_hooks(net, multis_nf_ops, ARRAY_SIZE(multis_nf_ops));
	pn->hooked = false;
}

/* After every change: the last group is gone, so is the hook. */
void multis_hook_sync(struct net *net, struct multis_net *pn)
{
	if (!pn->group_count)
		multis_hook_detach(net, pn);
}
