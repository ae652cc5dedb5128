/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Shared by multis and multic: the constants both use, how many packets and
 * IP bytes an skb stands for on the wire, so that both modules count a GSO
 * skb alike, and how the UDP checksum follows a new destination address.
 * What user space needs too (the default marker) is in the uapi header.
 */
#ifndef MULTICAST_PROXY_WIRE_H
#define MULTICAST_PROXY_WIRE_H

#include <linux/in6.h>
#include <linux/kernel.h>
#include <linux/skbuff.h>
#include <linux/udp.h>
#include <net/ipv6.h>
#include <net/checksum.h>

/*
 * VRRP, IP protocol 112 (not in <uapi/linux/in.h>): fanned out by multis
 * for a VRRP group, restored by multic with port 0; no L4 pseudo header.
 */
#define MCP_IPPROTO_VRRP	112
/* RFC 5798 5.1.1.3: a receiver drops an advert whose TTL is not 255. */
#define MCP_VRRP_TTL		255

/*
 * skb->len is the IP total length; a GSO skb stands for gso_segs packets
 * (computed from gso_size when the stack left gso_segs at 0), each with its
 * own @hdrlen bytes of headers.
 */
static inline void mcp_wire_size(const struct sk_buff *skb,
				 unsigned int hdrlen, u32 *packets, u64 *bytes)
{
	unsigned int segs;

	*packets = 1;
	*bytes = skb->len;
	if (!skb_is_gso(skb))
		return;
	segs = skb_shinfo(skb)->gso_segs;
	if (!segs && skb_shinfo(skb)->gso_size && skb->len > hdrlen)
		segs = DIV_ROUND_UP(skb->len - hdrlen,
				    skb_shinfo(skb)->gso_size);
	if (segs > 1) {
		*packets = segs;
		*bytes += (u64)(segs - 1) * hdrlen;
	}
}

/*
 * Does @uh->check hold a pseudo-header seed that the stack (or the NIC)
 * completes later, rather than a finished checksum?
 *
 * CHECKSUM_PARTIAL names one checksum: the one at csum_start.  For an
 * encapsulated skb (VXLAN, GENEVE...) that is the inner transport header's,
 * and the outer UDP field holds 0 ("no checksum", the VXLAN default) or a
 * full checksum (local checksum offload, udp_set_csum()).  Only a GSO tunnel
 * with outer checksums keeps a seed there: segmentation completes it.
 */
static inline bool mcp_udp_csum_is_seed(const struct sk_buff *skb,
					const struct udphdr *uh)
{
	if (skb->ip_summed != CHECKSUM_PARTIAL)
		return false;
	if (skb_checksum_start(skb) == (const unsigned char *)uh &&
	    skb->csum_offset == offsetof(struct udphdr, check))
		return true;
	return skb_is_gso(skb) &&
	       (skb_shinfo(skb)->gso_type & SKB_GSO_UDP_TUNNEL_CSUM);
}

/*
 * The UDP header @uh (linear, writable) gets a pseudo header with daddr @to
 * instead of @from.  A zero checksum means "none" and stays zero; a finished
 * checksum that comes out zero goes on the wire as CSUM_MANGLED_0.
 */
static inline void mcp_udp_csum_daddr(struct sk_buff *skb, struct udphdr *uh,
				      __be32 from, __be32 to)
{
	if (mcp_udp_csum_is_seed(skb, uh)) {
		inet_proto_csum_replace4(&uh->check, skb, from, to, true);
		return;
	}
	if (!uh->check)
		return;
	if (skb->ip_summed == CHECKSUM_PARTIAL)
		/* finished, next to someone else's seed: plain update */
		csum_replace4(&uh->check, from, to);
	else
		/* also keeps a CHECKSUM_COMPLETE skb->csum right */
		inet_proto_csum_replace4(&uh->check, skb, from, to, true);
	if (!uh->check)
		uh->check = CSUM_MANGLED_0;
}

/*
 * IPv6: the same rule for a 16-byte destination address.  IPv6 makes the
 * UDP checksum mandatory; a zero one is only ever an encapsulated skb's
 * outer header that is not ours to complete (udp6zerocsumtx), and stays.
 */
static inline void mcp_udp_csum_daddr6(struct sk_buff *skb, struct udphdr *uh,
				       const struct in6_addr *from,
				       const struct in6_addr *to)
{
	unsigned int i;

	if (mcp_udp_csum_is_seed(skb, uh)) {
		inet_proto_csum_replace16(&uh->check, skb, from->s6_addr32,
					  to->s6_addr32, true);
		return;
	}
	if (!uh->check)
		return;
	if (skb->ip_summed == CHECKSUM_PARTIAL)
		for (i = 0; i < 4; i++)
			csum_replace4(&uh->check, from->s6_addr32[i],
				      to->s6_addr32[i]);
	else
		inet_proto_csum_replace16(&uh->check, skb, from->s6_addr32,
					  to->s6_addr32, true);
	if (!uh->check)
		uh->check = CSUM_MANGLED_0;
}

/*
 * IPv6: the offset of the UDP header of @skb from its network header, that
 * header pulled into the linear area, or -1.  UDP counts only after
 * extension headers that leave the destination alone (hop-by-hop,
 * destination options): a routing header (the destination would not be the
 * final one), a fragment header (a fragment reassembly did not take) or any
 * other header is not UDP here, never misparsed.  Both modules' IPv6 hooks
 * find their datagrams so.
 */
static inline int mcp_udp6_offset(struct sk_buff *skb)
{
	u8 nexthdr = ipv6_hdr(skb)->nexthdr;
	__be16 frag_off = 0;
	int thoff;

	if (nexthdr != IPPROTO_UDP) {
		unsigned int off = 0;

		if (ipv6_find_hdr(skb, &off, NEXTHDR_ROUTING, NULL, NULL) >= 0)
			return -1;
	}
	thoff = ipv6_skip_exthdr(skb, skb_network_offset(skb) +
				 sizeof(struct ipv6hdr), &nexthdr, &frag_off);
	if (thoff < 0 || nexthdr != IPPROTO_UDP || frag_off)
		return -1;
	if (!pskb_may_pull(skb, thoff + sizeof(struct udphdr)))
		return -1;
	return thoff - skb_network_offset(skb);
}

#endif /* MULTICAST_PROXY_WIRE_H */
