/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Every difference between the kernels the multicast-proxy modules build on
 * (5.10 to 6.12 and later), and nothing else.
 *
 * Included first by every .c file, right after its pr_fmt (which must come
 * before any kernel header: a force-include would define the default one).
 * The COMPAT_HAVE_* flags come from the header checks in compat.mk; the .c
 * files never test a kernel version themselves.
 */
#ifndef MULTICAST_PROXY_COMPAT_H
#define MULTICAST_PROXY_COMPAT_H

#include <linux/compiler.h>
#include <linux/kernel.h>
#include <linux/netlink.h>
#include <linux/skbuff.h>
#include <linux/string.h>
#include <linux/types.h>
#include <net/genetlink.h>
#include <net/netlink.h>

/*
 * genl_family.resv_start_op (6.1): commands from this one on get their
 * genlmsghdr.reserved and nlmsg_flags validated, and only REQUEST, ACK, ECHO
 * and DUMP are allowed there.  Families whose commands take NLM_F_EXCL,
 * NLM_F_REPLACE... must put every command below it.  Before 6.1 nothing was
 * validated, which is the same.
 */
#ifdef COMPAT_HAVE_GENL_RESV_START_OP
#define COMPAT_GENL_RESV_START_OP(op)	.resv_start_op = (op),
#else
#define COMPAT_GENL_RESV_START_OP(op)
#endif

/*
 * The parsed attributes of a dump request: 6.2 embedded a struct genl_info
 * in struct genl_dumpit_info.
 */
static inline struct nlattr **compat_genl_dumpit_attrs(struct netlink_callback *cb)
{
#ifdef COMPAT_HAVE_GENL_DUMPIT_INFO_INFO
	return genl_dumpit_info(cb)->info.attrs;
#else
	return genl_dumpit_info(cb)->attrs;
#endif
}

/*
 * Formatted extack messages ("member 224.1.1.1 is a multicast address").
 *
 * Since 6.2 struct netlink_ext_ack has a buffer of its own, _msg_buf, which
 * NL_SET_ERR_MSG_FMT() formats into.  Before, extack->_msg must point at text
 * that stays alive after the handler returns, until netlink_rcv_skb() has
 * built the ack; and before 6.5 a dump's ->start() gets no ext_ack at all
 * (cb->extack is NULL there).
 *
 * So a handler keeps a struct compat_nlerr on its stack and reports with
 * compat_nlerr_fmt().  Where the ext_ack can hold the text, it goes there,
 * as NL_SET_ERR_MSG_FMT() would put it.  Elsewhere it stays in
 * compat_nlerr.msg, and compat_nlerr_finish() sends the error ack itself
 * while that text is alive and returns -EINTR, which netlink_rcv_skb() takes
 * as "acknowledged already" (the convention of a started dump).  That ack is
 * the one netlink_rcv_skb() would have sent: the same errno, message and bad
 * attribute.
 *
 * Do not define a drop-in NL_SET_ERR_MSG_FMT() for old kernels on top of a
 * static or per-CPU buffer: the handler returns, the task may be preempted
 * before the ack is built, and a concurrent request overwrites the text.
 */
#define COMPAT_NLERR_MSG_LEN	80

struct compat_nlerr {
	struct netlink_ext_ack *extack;	/* NULL in an old dump ->start() */
	bool own;			/* the message is in msg[] */
	char msg[COMPAT_NLERR_MSG_LEN];
};

static inline void compat_nlerr_init(struct compat_nlerr *e,
				     struct netlink_ext_ack *extack)
{
	e->extack = extack;
	e->own = false;
	e->msg[0] = '\0';
}

static inline __printf(2, 3)
void compat_nlerr_fmt(struct compat_nlerr *e, const char *fmt, ...)
{
	va_list args;

	va_start(args, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, args);
	va_end(args);
#ifdef COMPAT_HAVE_EXTACK_MSG_BUF
	if (e->extack) {
		strscpy(e->extack->_msg_buf, e->msg,
			sizeof(e->extack->_msg_buf));
		e->extack->_msg = e->extack->_msg_buf;
		e->own = false;
		return;
	}
#endif
	e->own = true;
	if (e->extack)
		e->extack->_msg = e->msg;
}

/*
 * The return value of a doit or dump ->start() handler that reported through
 * @e: @err, or -EINTR once the error ack carrying @e's text has been sent.
 */
static inline int compat_nlerr_finish(struct compat_nlerr *e,
				      struct sk_buff *skb,
				      const struct nlmsghdr *nlh, int err)
{
	struct netlink_ext_ack local = {};
	struct netlink_ext_ack *extack = e->extack ?: &local;

	if (!err || !e->own)
		return err;
	/* A later static message (NL_SET_ERR_MSG) won: the core acks. */
	if (e->extack && e->extack->_msg != e->msg)
		return err;
	extack->_msg = e->msg;
	netlink_ack(skb, (struct nlmsghdr *)nlh, err, extack);
	return -EINTR;
}

/* multis */

/*
 * local_lock_nested_bh() (6.11): the lock of per-CPU data that BH-disabled
 * sections share.  On PREEMPT_RT, where disabling BH need not serialise two
 * tasks on one CPU any more, it is a real per-CPU lock; elsewhere a lockdep
 * annotation.  Before, disabling BH serialised those sections on every
 * kernel, RT included (the softirq lock): there is nothing to take.
 */
#ifndef COMPAT_HAVE_LOCAL_LOCK_NESTED_BH
#define local_lock_nested_bh(lock)	do { } while (0)
#define local_unlock_nested_bh(lock)	do { } while (0)
#endif

/*
 * net/gso.h (6.5): skb_gso_validate_network_len() and the other GSO helpers,
 * declared in linux/skbuff.h before.
 */
#ifdef COMPAT_HAVE_NET_GSO_H
#include <net/gso.h>
#endif

/* multic */

/*
 * nf_defrag_ipv4_disable() (5.13), the counterpart of nf_defrag_ipv4_enable().
 * Before, defragmentation stayed on in a namespace once enabled, until the
 * namespace went away: there is nothing to undo.
 */
#ifndef COMPAT_HAVE_NF_DEFRAG_IPV4_DISABLE
struct net;

static inline void nf_defrag_ipv4_disable(struct net *net)
{
}
#endif

/* nf_defrag_ipv6_disable() (5.13): the same for IPv6. */
#ifndef COMPAT_HAVE_NF_DEFRAG_IPV6_DISABLE
struct net;

static inline void nf_defrag_ipv6_disable(struct net *net)
{
}
#endif

#endif /* MULTICAST_PROXY_COMPAT_H */
