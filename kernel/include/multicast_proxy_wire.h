/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Shared by multis and multic: how many packets and IP bytes an skb stands
 * for on the wire, so that both modules count a GSO skb alike.
 */
#ifndef MULTICAST_PROXY_WIRE_H
#define MULTICAST_PROXY_WIRE_H

#include <linux/kernel.h>
#include <linux/skbuff.h>

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

#endif /* MULTICAST_PROXY_WIRE_H */
