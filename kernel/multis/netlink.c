// SPDX-License-Identifier: GPL-2.0
/*
 * The "multis" generic netlink family: include/uapi/linux/multicast_proxy.h
 * is the protocol.
 *
 * Every request is validated by the policies below (strict: unknown
 * attributes and wrong lengths are refused), every refusal carries an extack
 * message, and every change is all or nothing under multis_net.lock.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include "compat.h"
#include "group.h"
#include "hook.h"
#include "multis.h"
#include "netlink.h"

#include <linux/in.h>
#include <linux/in6.h>
#include <linux/inet.h>
#include <linux/mm.h>
#include <net/addrconf.h>
#include <net/genetlink.h>
#include <net/ipv6.h>
#include <net/netlink.h>
#include <net/sock.h>

#include <uapi/linux/multicast_proxy.h>

static const struct nla_policy multis_nl_member_policy[MULTIS_MEMBER_A_MAX + 1] = {
	[MULTIS_MEMBER_A_ADDR]	= { .type = NLA_BE32 },
	[MULTIS_MEMBER_A_ADDR6]	= NLA_POLICY_EXACT_LEN(sizeof(struct in6_addr)),
};

static const struct nla_policy multis_nl_policy[MULTIS_A_MAX + 1] = {
	[MULTIS_A_GROUP_ADDR]	= { .type = NLA_BE32 },
	[MULTIS_A_GROUP_FLAGS]	= { .type = NLA_U32 },
	[MULTIS_A_MEMBERS]	= NLA_POLICY_NESTED_ARRAY(multis_nl_member_policy),
	[MULTIS_A_REQUIRE_RESTORED] = { .type = NLA_FLAG },
	[MULTIS_A_GROUP_ADDR6]	= NLA_POLICY_EXACT_LEN(sizeof(struct in6_addr)),
};

static struct genl_family multis_nl_family;

/* The counters in the order of enum multis_stats_attr. */
static const struct {
	u16 attr;
	u8 ctr;
} multis_nl_stats[] = {
	{ MULTIS_STATS_A_DATAGRAMS,	 MULTIS_CTR_DATAGRAMS },
	{ MULTIS_STATS_A_PACKETS,	 MULTIS_CTR_PACKETS },
	{ MULTIS_STATS_A_BYTES,		 MULTIS_CTR_BYTES },
	{ MULTIS_STATS_A_DROP_NO_MEMBER, MULTIS_CTR_DROP_NO_MEMBER },
	{ MULTIS_STATS_A_DROP_NOMEM,	 MULTIS_CTR_DROP_NOMEM },
	{ MULTIS_STATS_A_DROP_NO_ROUTE,	 MULTIS_CTR_DROP_NO_ROUTE },
	{ MULTIS_STATS_A_DROP_XMIT,	 MULTIS_CTR_DROP_XMIT },
	{ MULTIS_STATS_A_DROP_TOO_BIG,	 MULTIS_CTR_DROP_TOO_BIG },
};

/* One request: where it acts and where its error message goes. */
struct multis_nl_req {
	struct net *net;
	struct multis_net *pn;
	struct compat_nlerr err;
	struct in6_addr group_addr;	/* IPv4: IPv4-mapped */
	struct multis_group *group;	/* NULL: does not exist (yet) */
	char group_str[INET6_ADDRSTRLEN];	/* group_addr, for messages */
};

/* An address of either family as text: a.b.c.d, or compressed IPv6. */
static const char *multis_nl_addr_str(const struct in6_addr *addr,
				      char *buf)
{
	if (multis_addr_is_v4(addr))
		snprintf(buf, INET6_ADDRSTRLEN, "%pI4", &addr->s6_addr32[3]);
	else
		snprintf(buf, INET6_ADDRSTRLEN, "%pI6c", addr);
	return buf;
}

static int multis_nl_put_addr(struct sk_buff *skb, int attr4, int attr6,
			      const struct in6_addr *addr)
{
	if (multis_addr_is_v4(addr))
		return nla_put_in_addr(skb, attr4, addr->s6_addr32[3]);
	return nla_put_in6_addr(skb, attr6, addr);
}

/*
 * The address of exactly one of @a4 (IPv4, kept IPv4-mapped) and @a6
 * (IPv6, which must not be IPv4-mapped); -ENODATA when neither is given.
 */
static int multis_nl_get_addr(struct multis_nl_req *req,
			      const struct nlattr *a4, const struct nlattr *a6,
			      const char *what, struct in6_addr *addr)
{
	if (a4 && a6) {
		NL_SET_BAD_ATTR(req->err.extack, a6);
		compat_nlerr_fmt(&req->err, "%s: give an IPv4 or an IPv6 address, not both",
				 what);
		return -EINVAL;
	}
	if (a4) {
		ipv6_addr_set_v4mapped(nla_get_in_addr(a4), addr);
		return 0;
	}
	if (!a6)
		return -ENODATA;
	*addr = nla_get_in6_addr(a6);
	if (ipv6_addr_v4mapped(addr)) {
		NL_SET_BAD_ATTR(req->err.extack, a6);
		compat_nlerr_fmt(&req->err,
				 "%s %pI6c is IPv4-mapped (give %pI4)",
				 what, addr, &addr->s6_addr32[3]);
		return -EINVAL;
	}
	return 0;
}

static void multis_nl_req_init(struct multis_nl_req *req, struct net *net,
			       struct netlink_ext_ack *extack)
{
	req->net = net;
	req->pn = multis_pernet(net);
	compat_nlerr_init(&req->err, extack);
	req->group_addr = in6addr_any;
	req->group = NULL;
	req->group_str[0] = 0;
}

static int multis_nl_put_stats(struct sk_buff *skb, int attrtype,
			       const struct multis_stats *stats)
{
	u64 val[MULTIS_CTR_N];
	struct nlattr *nest;
	unsigned int i;

	multis_stats_read(stats, val);
	nest = nla_nest_start(skb, attrtype);
	if (!nest)
		return -EMSGSIZE;
	for (i = 0; i < ARRAY_SIZE(multis_nl_stats); i++) {
		if (multis_nl_stats[i].ctr >= stats->n)
			continue;
		if (nla_put_u64_64bit(skb, multis_nl_stats[i].attr,
				      val[multis_nl_stats[i].ctr],
				      MULTIS_STATS_A_PAD)) {
			nla_nest_cancel(skb, nest);
			return -EMSGSIZE;
		}
	}
	nla_nest_end(skb, nest);
	return 0;
}

static int multis_nl_put_group(struct sk_buff *skb, struct multis_net *pn,
			       struct multis_group *group)
{
	if (multis_nl_put_addr(skb, MULTIS_A_GROUP_ADDR, MULTIS_A_GROUP_ADDR6,
			       &group->addr) ||
	    nla_put_u32(skb, MULTIS_A_GROUP_FLAGS, group->flags) ||
	    nla_put_u32(skb, MULTIS_A_MEMBER_COUNT,
			multis_group_member_count(pn, group)) ||
	    multis_nl_put_stats(skb, MULTIS_A_STATS, &group->stats))
		return -EMSGSIZE;
	return 0;
}

static int multis_nl_put_member(struct sk_buff *skb,
				const struct multis_member *member)
{
	struct nlattr *nest;

	nest = nla_nest_start(skb, MULTIS_A_MEMBER);
	if (!nest)
		return -EMSGSIZE;
	if (multis_nl_put_addr(skb, MULTIS_MEMBER_A_ADDR, MULTIS_MEMBER_A_ADDR6,
			       &member->addr) ||
	    multis_nl_put_stats(skb, MULTIS_MEMBER_A_STATS, &member->stats)) {
		nla_nest_cancel(skb, nest);
		return -EMSGSIZE;
	}
	nla_nest_end(skb, nest);
	return 0;
}

/*
 * A change the tools will save to the state file (MULTIS_A_REQUIRE_RESTORED)
 * is refused while the namespace holds a configuration that did not come
 * from that file: saving it would replace the file with something else.
 */
static int multis_nl_check_restored(struct multis_nl_req *req,
				    struct nlattr **attrs)
{
	lockdep_assert_held(&req->pn->lock);
	if (!attrs || !attrs[MULTIS_A_REQUIRE_RESTORED] || req->pn->restored)
		return 0;
	compat_nlerr_fmt(&req->err,
			 "saved state not restored yet: run `service multis start`");
	return -ESTALE;
}

/*
 * A request changed the configuration when it moved the groups' generation
 * on from @before (read when it took the lock): the configuration's
 * generation moves on by one, however many groups the request touched.
 */
static void multis_nl_changed(struct multis_net *pn, u32 before)
{
	lockdep_assert_held(&pn->lock);
	if (pn->generation != before)
		pn->config_gen++;
}

/* req->group_addr from MULTIS_A_GROUP_ADDR or _ADDR6: one is required. */
static int multis_nl_get_group_addr(struct multis_nl_req *req,
				    struct nlattr **attrs)
{
	int ret = -ENODATA;

	if (attrs)
		ret = multis_nl_get_addr(req, attrs[MULTIS_A_GROUP_ADDR],
					 attrs[MULTIS_A_GROUP_ADDR6], "group",
					 &req->group_addr);
	if (ret == -ENODATA) {
		compat_nlerr_fmt(&req->err, "missing group address");
		return -EINVAL;
	}
	if (!ret)
		multis_nl_addr_str(&req->group_addr, req->group_str);
	return ret;
}

static const struct nlattr *multis_nl_group_attr(struct nlattr **attrs)
{
	return attrs[MULTIS_A_GROUP_ADDR] ?: attrs[MULTIS_A_GROUP_ADDR6];
}

/* req->group: the existing group req->group_addr, or -ENOENT. */
static int multis_nl_find_group(struct multis_nl_req *req,
				struct nlattr **attrs)
{
	int ret;

	ret = multis_nl_get_group_addr(req, attrs);
	if (ret)
		return ret;
	req->group = multis_group_find(req->pn, &req->group_addr);
	if (!req->group) {
		NL_SET_BAD_ATTR(req->err.extack, multis_nl_group_attr(attrs));
		compat_nlerr_fmt(&req->err, "group %s does not exist",
				 req->group_str);
		return -ENOENT;
	}
	return 0;
}

/* A member of the group's family: refused with the tools' words. */
static int multis_nl_check_family(struct multis_nl_req *req,
				  const struct in6_addr *addr,
				  const struct nlattr *attr)
{
	bool v4 = multis_addr_is_v4(addr);
	char buf[INET6_ADDRSTRLEN];

	if (v4 == multis_addr_is_v4(&req->group_addr))
		return 0;
	NL_SET_BAD_ATTR(req->err.extack, attr);
	/* Short: an extack message holds 79 characters (IPv6: up to 39). */
	compat_nlerr_fmt(&req->err, "group %s: member %s is IPv%d",
			 req->group_str, multis_nl_addr_str(addr, buf),
			 v4 ? 4 : 6);
	return -EINVAL;
}

/* JOIN: may @addr become a member of req->group_addr? */
static int multis_nl_check_new_member(struct multis_nl_req *req,
				      const struct in6_addr *addr,
				      const struct nlattr *attr)
{
	char buf[INET6_ADDRSTRLEN];
	__be32 v4 = addr->s6_addr32[3];
	const char *why;
	int ret;

	ret = multis_nl_check_family(req, addr, attr);
	if (ret)
		return ret;
	/* First: of all the reasons, the one that matters most. */
	if (ipv6_addr_equal(addr, &req->group_addr) ||
	    multis_group_find(req->pn, addr))
		why = "a configured group";	/* copies would loop */
	else if (!multis_addr_is_v4(addr)) {
		if (ipv6_addr_is_multicast(addr))
			why = "a multicast address";
		else if (ipv6_addr_loopback(addr))
			why = "a loopback address";
		else if (ipv6_addr_any(addr))
			why = "an unspecified address";
		else
			return 0;	/* IPv4-mapped: refused when parsed */
	} else if (ipv4_is_multicast(v4))
		why = "a multicast address";
	else if (ipv4_is_loopback(v4))
		why = "a loopback address";
	else if (ipv4_is_zeronet(v4))
		why = "an unspecified address";
	else if (ipv4_is_lbcast(v4))
		why = "the broadcast address";
	else
		return 0;

	NL_SET_BAD_ATTR(req->err.extack, attr);
	compat_nlerr_fmt(&req->err, "member %s is %s",
			 multis_nl_addr_str(addr, buf), why);
	return -EINVAL;
}

/* QUIT: is @addr a member of req->group? */
static int multis_nl_check_old_member(struct multis_nl_req *req,
				      const struct in6_addr *addr,
				      const struct nlattr *attr)
{
	char buf[INET6_ADDRSTRLEN];
	int ret;

	ret = multis_nl_check_family(req, addr, attr);
	if (ret)
		return ret;
	if (multis_members_has(multis_group_members(req->pn, req->group),
			       addr))
		return 0;
	NL_SET_BAD_ATTR(req->err.extack, attr);
	if (multis_addr_is_v4(addr))
		compat_nlerr_fmt(&req->err, "member %s is not in group %s",
				 multis_nl_addr_str(addr, buf), req->group_str);
	else
		compat_nlerr_fmt(&req->err, "member %s is not in the group",
				 multis_nl_addr_str(addr, buf));
	return -ENOENT;
}

/*
 * The addresses of MULTIS_A_MEMBERS (a nest of MULTIS_A_MEMBER nests, each
 * with an address), each accepted by @check, sorted and without duplicates,
 * in a kvmalloc'd array for the caller to kvfree().  The policy has
 * validated the attributes; the nest's size bounds their number.
 */
static int multis_nl_get_members(struct multis_nl_req *req,
				 const struct nlattr *nest,
				 int (*check)(struct multis_nl_req *req,
					      const struct in6_addr *addr,
					      const struct nlattr *attr),
				 struct in6_addr **addrs, unsigned int *n)
{
	const struct nlattr *elem, *a4, *a6;
	unsigned int count = 0;
	int rem, ret;

	*addrs = NULL;
	*n = 0;
	if (!nest)
		return 0;
	nla_for_each_nested(elem, nest, rem)
		count++;
	if (!count)
		return 0;
	*addrs = kvmalloc_array(count, sizeof(**addrs), GFP_KERNEL);
	if (!*addrs) {
		compat_nlerr_fmt(&req->err, "out of memory");
		return -ENOMEM;
	}

	nla_for_each_nested(elem, nest, rem) {
		struct in6_addr addr;

		if (nla_type(elem) != MULTIS_A_MEMBER) {
			NL_SET_BAD_ATTR(req->err.extack, elem);
			compat_nlerr_fmt(&req->err,
					 "members: element type %u is not MULTIS_A_MEMBER",
					 nla_type(elem));
			return -EINVAL;
		}
		a4 = nla_find_nested(elem, MULTIS_MEMBER_A_ADDR);
		a6 = nla_find_nested(elem, MULTIS_MEMBER_A_ADDR6);
		ret = multis_nl_get_addr(req, a4, a6, "member", &addr);
		if (ret == -ENODATA) {
			NL_SET_BAD_ATTR(req->err.extack, elem);
			compat_nlerr_fmt(&req->err, "member without an address");
			return -EINVAL;
		}
		if (ret)
			return ret;
		ret = check(req, &addr, a4 ?: a6);
		if (ret)
			return ret;
		(*addrs)[(*n)++] = addr;
	}
	multis_addrs_sort_unique(*addrs, n);
	return 0;
}

/* JOIN of a group that does not exist yet: may it be created? */
static int multis_nl_check_new_group(struct multis_nl_req *req, u32 flags,
				     const struct nlattr *attr)
{
	unsigned int max_groups = READ_ONCE(multis_max_groups);
	struct multis_net *pn = req->pn;
	const struct in6_addr *group = &req->group_addr;
	__be32 addr = group->s6_addr32[3];
	char buf[INET6_ADDRSTRLEN];
	struct multis_group *owner;

	/*
	 * A broadcast group is 255.255.255.255 or a subnet's broadcast
	 * address.  Which addresses are a subnet's broadcast depends on
	 * interface configuration that changes under us, so any address that
	 * is not multicast, loopback or in 0.0.0.0/8 is accepted: the
	 * administrator names it explicitly with MULTIS_GROUP_F_BROADCAST.
	 */
	if (!multis_addr_is_v4(group)) {
		/* Scopes 0 and 1 (interface-local) never leave the host. */
		if (flags & MULTIS_GROUP_F_BROADCAST) {
			NL_SET_BAD_ATTR(req->err.extack, attr);
			compat_nlerr_fmt(&req->err,
					 "group %s: IPv6 has no broadcast",
					 req->group_str);
			return -EINVAL;
		}
		if (!ipv6_addr_is_multicast(group)) {
			NL_SET_BAD_ATTR(req->err.extack, attr);
			compat_nlerr_fmt(&req->err,
					 "group %s is not multicast (ff00::/8)",
					 req->group_str);
			return -EINVAL;
		}
		if (IPV6_ADDR_MC_SCOPE(group) <= IPV6_ADDR_SCOPE_NODELOCAL) {
			NL_SET_BAD_ATTR(req->err.extack, attr);
			compat_nlerr_fmt(&req->err,
					 "group %s: scope %x never leaves the host",
					 req->group_str, IPV6_ADDR_MC_SCOPE(group));
			return -EINVAL;
		}
	} else if (flags & MULTIS_GROUP_F_BROADCAST) {
		if (ipv4_is_multicast(addr) || ipv4_is_loopback(addr) ||
		    ipv4_is_zeronet(addr)) {
			NL_SET_BAD_ATTR(req->err.extack, attr);
			compat_nlerr_fmt(&req->err,
					 "group %pI4 is not a broadcast address",
					 &addr);
			return -EINVAL;
		}
	} else if (!ipv4_is_multicast(addr)) {
		NL_SET_BAD_ATTR(req->err.extack, attr);
		compat_nlerr_fmt(&req->err,
				 "group %pI4 is not a multicast address",
				 &addr);
		return -EINVAL;
	}

	owner = multis_group_of_member(pn, group);
	if (owner) {
		NL_SET_BAD_ATTR(req->err.extack, attr);
		compat_nlerr_fmt(&req->err, "group %s is a member of group %s",
				 req->group_str,
				 multis_nl_addr_str(&owner->addr, buf));
		return -EINVAL;
	}

	if (pn->group_count >= max_groups) {
		compat_nlerr_fmt(&req->err, "group limit %u reached", max_groups);
		return -ENOSPC;
	}
	return 0;
}

static int multis_nl_join_locked(struct multis_nl_req *req,
				 struct genl_info *info, struct in6_addr **add)
{
	unsigned int max_members = READ_ONCE(multis_max_members);
	struct nlattr **attrs = info->attrs;
	struct multis_members *members;
	unsigned int i, n, fresh, count;
	u32 flags = 0;
	int ret;

	ret = multis_nl_check_restored(req, attrs);
	if (ret)
		return ret;
	ret = multis_nl_get_group_addr(req, attrs);
	if (ret)
		return ret;
	if (attrs[MULTIS_A_GROUP_FLAGS])
		flags = nla_get_u32(attrs[MULTIS_A_GROUP_FLAGS]);
	if (flags & ~MULTIS_GROUP_F_ALL) {
		NL_SET_BAD_ATTR(req->err.extack, attrs[MULTIS_A_GROUP_FLAGS]);
		compat_nlerr_fmt(&req->err, "unknown group flags 0x%x",
				 flags & ~MULTIS_GROUP_F_ALL);
		return -EOPNOTSUPP;
	}

	req->group = multis_group_find(req->pn, &req->group_addr);
	if (req->group && (info->nlhdr->nlmsg_flags & NLM_F_EXCL)) {
		compat_nlerr_fmt(&req->err, "group %s already exists",
				 req->group_str);
		return -EEXIST;
	}
	/* A conflict with what exists (not a bad request): -EEXIST. */
	if (req->group && attrs[MULTIS_A_GROUP_FLAGS] &&
	    flags != req->group->flags) {
		NL_SET_BAD_ATTR(req->err.extack, attrs[MULTIS_A_GROUP_FLAGS]);
		compat_nlerr_fmt(&req->err,
				 "group %s already exists with flags 0x%x",
				 req->group_str, req->group->flags);
		return -EEXIST;
	}
	if (!req->group) {
		ret = multis_nl_check_new_group(req, flags,
						multis_nl_group_attr(attrs));
		if (ret)
			return ret;
	}

	ret = multis_nl_get_members(req, attrs[MULTIS_A_MEMBERS],
				    multis_nl_check_new_member, add, &n);
	if (ret)
		return ret;

	/* Members already in the group are not an error: JOIN is idempotent. */
	members = req->group ? multis_group_members(req->pn, req->group) : NULL;
	count = members ? members->count : 0;
	for (i = 0, fresh = 0; i < n; i++)
		if (!multis_members_has(members, &(*add)[i]))
			(*add)[fresh++] = (*add)[i];
	if ((u64)count + fresh > max_members) {
		compat_nlerr_fmt(&req->err, "group %s: member limit %u reached",
				 req->group_str, max_members);
		return -ENOSPC;
	}

	/* The first group brings the hook in; multis_nl_members_do() undoes. */
	ret = multis_hook_attach(req->net, req->pn);
	if (ret) {
		compat_nlerr_fmt(&req->err, "cannot register the netfilter hook");
		return ret;
	}
	ret = multis_group_join(req->pn, req->group, &req->group_addr, flags,
				*add, fresh);
	if (ret)
		compat_nlerr_fmt(&req->err, "out of memory");
	return ret;
}

static int multis_nl_quit_locked(struct multis_nl_req *req,
				 struct genl_info *info, struct in6_addr **del)
{
	unsigned int n;
	int ret;

	ret = multis_nl_check_restored(req, info->attrs);
	if (ret)
		return ret;
	ret = multis_nl_find_group(req, info->attrs);
	if (ret)
		return ret;
	if (!info->attrs[MULTIS_A_MEMBERS]) {
		compat_nlerr_fmt(&req->err, "missing members");
		return -EINVAL;
	}
	ret = multis_nl_get_members(req, info->attrs[MULTIS_A_MEMBERS],
				    multis_nl_check_old_member, del, &n);
	if (ret)
		return ret;
	ret = multis_group_quit(req->pn, req->group, *del, n);
	if (ret)
		compat_nlerr_fmt(&req->err, "out of memory");
	return ret;
}

/*
 * JOIN and QUIT: @locked runs under the namespace's lock and may leave a
 * kvmalloc()ed member array in @members, freed here after the unlock.
 */
static int multis_nl_members_do(struct sk_buff *skb, struct genl_info *info,
				int (*locked)(struct multis_nl_req *req,
					      struct genl_info *info,
					      struct in6_addr **members))
{
	struct multis_nl_req req;
	struct in6_addr *members = NULL;
	u32 before;
	int ret;

	multis_nl_req_init(&req, genl_info_net(info), info->extack);
	mutex_lock(&req.pn->lock);
	before = req.pn->generation;
	ret = locked(&req, info, &members);
	multis_nl_changed(req.pn, before);
	multis_hook_sync(req.net, req.pn);
	mutex_unlock(&req.pn->lock);
	kvfree(members);
	return compat_nlerr_finish(&req.err, skb, info->nlhdr, ret);
}

static int multis_nl_join(struct sk_buff *skb, struct genl_info *info)
{
	return multis_nl_members_do(skb, info, multis_nl_join_locked);
}

static int multis_nl_quit(struct sk_buff *skb, struct genl_info *info)
{
	return multis_nl_members_do(skb, info, multis_nl_quit_locked);
}

static int multis_nl_del_group(struct sk_buff *skb, struct genl_info *info)
{
	struct multis_nl_req req;
	int ret;

	multis_nl_req_init(&req, genl_info_net(info), info->extack);
	mutex_lock(&req.pn->lock);
	ret = multis_nl_check_restored(&req, info->attrs);
	if (!ret)
		ret = multis_nl_find_group(&req, info->attrs);
	if (!ret) {
		u32 before = req.pn->generation;

		multis_group_delete(req.pn, req.group);
		multis_nl_changed(req.pn, before);
		multis_hook_sync(req.net, req.pn);
	}
	mutex_unlock(&req.pn->lock);
	return compat_nlerr_finish(&req.err, skb, info->nlhdr, ret);
}

static int multis_nl_clear(struct sk_buff *skb, struct genl_info *info)
{
	struct multis_nl_req req;
	int ret;

	multis_nl_req_init(&req, genl_info_net(info), info->extack);
	mutex_lock(&req.pn->lock);
	ret = multis_nl_check_restored(&req, info->attrs);
	if (!ret) {
		u32 before = req.pn->generation;

		multis_group_clear(req.pn);
		multis_nl_changed(req.pn, before);
		multis_hook_sync(req.net, req.pn);
	}
	mutex_unlock(&req.pn->lock);
	return compat_nlerr_finish(&req.err, skb, info->nlhdr, ret);
}

/* The namespace now holds the saved state: see the uapi header. */
static int multis_nl_set_restored(struct sk_buff *skb, struct genl_info *info)
{
	struct multis_net *pn = multis_pernet(genl_info_net(info));

	mutex_lock(&pn->lock);
	if (!pn->restored) {
		pn->restored = true;
		pn->config_gen++;
	}
	mutex_unlock(&pn->lock);
	return 0;
}

static int multis_nl_reset_stats(struct sk_buff *skb, struct genl_info *info)
{
	struct multis_net *pn = multis_pernet(genl_info_net(info));

	mutex_lock(&pn->lock);
	multis_group_reset_stats(pn);
	mutex_unlock(&pn->lock);
	return 0;
}

static int multis_nl_get_group(struct sk_buff *skb, struct genl_info *info)
{
	struct multis_nl_req req;
	struct sk_buff *msg;
	void *hdr;
	int ret;

	msg = genlmsg_new(NLMSG_GOODSIZE, GFP_KERNEL);
	if (!msg)
		return -ENOMEM;

	multis_nl_req_init(&req, genl_info_net(info), info->extack);
	mutex_lock(&req.pn->lock);
	ret = multis_nl_find_group(&req, info->attrs);
	if (ret)
		goto out_unlock;
	ret = -EMSGSIZE;
	hdr = genlmsg_put_reply(msg, info, &multis_nl_family, 0,
				MULTIS_CMD_GET_GROUP);
	if (!hdr || multis_nl_put_group(msg, req.pn, req.group))
		goto out_unlock;
	genlmsg_end(msg, hdr);
	mutex_unlock(&req.pn->lock);
	return genlmsg_reply(msg, info);

out_unlock:
	mutex_unlock(&req.pn->lock);
	nlmsg_free(msg);
	return compat_nlerr_finish(&req.err, skb, info->nlhdr, ret);
}

static int multis_nl_get_stats(struct sk_buff *skb, struct genl_info *info)
{
	struct multis_net *pn = multis_pernet(genl_info_net(info));
	struct sk_buff *msg;
	void *hdr;
	int ret;

	msg = genlmsg_new(NLMSG_GOODSIZE, GFP_KERNEL);
	if (!msg)
		return -ENOMEM;

	mutex_lock(&pn->lock);
	hdr = genlmsg_put_reply(msg, info, &multis_nl_family, 0,
				MULTIS_CMD_GET_STATS);
	ret = !hdr ||
	      multis_nl_put_stats(msg, MULTIS_A_STATS, &pn->stats) ||
	      nla_put_u32(msg, MULTIS_A_GROUP_COUNT, pn->group_count) ||
	      nla_put_u32(msg, MULTIS_A_MAX_GROUPS, READ_ONCE(multis_max_groups)) ||
	      nla_put_u32(msg, MULTIS_A_MAX_MEMBERS,
			  READ_ONCE(multis_max_members)) ||
	      nla_put_u8(msg, MULTIS_A_MARKER_TOS, READ_ONCE(multis_marker_tos)) ||
	      nla_put_u8(msg, MULTIS_A_RESTORED, pn->restored) ||
	      nla_put_u64_64bit(msg, MULTIS_A_GENERATION, pn->config_gen,
				MULTIS_A_PAD);
	mutex_unlock(&pn->lock);
	if (ret) {
		nlmsg_free(msg);
		return -EMSGSIZE;
	}
	genlmsg_end(msg, hdr);
	return genlmsg_reply(msg, info);
}

/*
 * Dumps.  A dump runs over several calls; each takes the lock, stamps
 * cb->seq with the table's generation (a change between two calls marks the
 * next message NLM_F_DUMP_INTR) and resumes from an address cursor:
 *   cb->args[0]	1 once everything has been dumped
 *   cb->args[1..2]	the address (struct in6_addr, IPv4-mapped for IPv4)
 *			to resume at; all zero: from the first
 */
static void multis_nl_cursor_get(const struct netlink_callback *cb,
				 struct in6_addr *addr)
{
	BUILD_BUG_ON(sizeof(*addr) > 2 * sizeof(cb->args[1]));
	memcpy(addr, &cb->args[1], sizeof(*addr));
}

static void multis_nl_cursor_set(struct netlink_callback *cb,
				 const struct in6_addr *addr)
{
	memcpy(&cb->args[1], addr, sizeof(*addr));
}

static int multis_nl_dump_groups(struct sk_buff *skb,
				 struct netlink_callback *cb)
{
	struct multis_net *pn = multis_pernet(sock_net(cb->skb->sk));
	struct multis_group *group;
	struct in6_addr cursor;
	bool done = true;
	void *hdr;

	if (cb->args[0])
		return 0;
	multis_nl_cursor_get(cb, &cursor);

	mutex_lock(&pn->lock);
	cb->seq = pn->generation;
	list_for_each_entry(group, &pn->group_list, lnode) {
		if (ipv6_addr_cmp(&group->addr, &cursor) < 0)
			continue;
		hdr = genlmsg_put(skb, NETLINK_CB(cb->skb).portid,
				  cb->nlh->nlmsg_seq, &multis_nl_family,
				  NLM_F_MULTI, MULTIS_CMD_GET_GROUP);
		if (hdr) {
			genl_dump_check_consistent(cb, hdr);
			if (!multis_nl_put_group(skb, pn, group)) {
				genlmsg_end(skb, hdr);
				continue;
			}
			genlmsg_cancel(skb, hdr);
		}
		/* Full: resume at this group. */
		multis_nl_cursor_set(cb, &group->addr);
		done = false;
		break;
	}
	mutex_unlock(&pn->lock);

	if (done)
		cb->args[0] = 1;
	else if (!skb->len)
		return -EMSGSIZE;
	return skb->len;
}

static int multis_nl_members_start(struct netlink_callback *cb)
{
	struct multis_nl_req req;
	int ret;

	multis_nl_req_init(&req, sock_net(cb->skb->sk), cb->extack);
	mutex_lock(&req.pn->lock);
	ret = multis_nl_find_group(&req, compat_genl_dumpit_attrs(cb));
	mutex_unlock(&req.pn->lock);
	return compat_nlerr_finish(&req.err, cb->skb, cb->nlh, ret);
}

/* One message per call: the group and as many members as fit. */
static int multis_nl_dump_members(struct sk_buff *skb,
				  struct netlink_callback *cb)
{
	struct nlattr **attrs = compat_genl_dumpit_attrs(cb);
	struct multis_net *pn = multis_pernet(sock_net(cb->skb->sk));
	struct multis_members *members;
	struct multis_group *group;
	struct in6_addr cursor, addr;
	unsigned int i, first;
	struct nlattr *nest;
	void *hdr;
	int ret;

	if (cb->args[0])
		return 0;
	multis_nl_cursor_get(cb, &cursor);
	/* .start has checked it: one of the two, a valid address. */
	if (attrs[MULTIS_A_GROUP_ADDR])
		ipv6_addr_set_v4mapped(nla_get_in_addr(attrs[MULTIS_A_GROUP_ADDR]),
				       &addr);
	else
		addr = nla_get_in6_addr(attrs[MULTIS_A_GROUP_ADDR6]);

	mutex_lock(&pn->lock);
	cb->seq = pn->generation;
	group = multis_group_find(pn, &addr);
	if (!group) {
		NL_SET_ERR_MSG(cb->extack, "group deleted during the dump");
		ret = -ENOENT;
		goto out;
	}
	members = multis_group_members(pn, group);
	first = multis_members_search(members, &cursor);

	ret = -EMSGSIZE;
	hdr = genlmsg_put(skb, NETLINK_CB(cb->skb).portid, cb->nlh->nlmsg_seq,
			  &multis_nl_family, NLM_F_MULTI,
			  MULTIS_CMD_GET_MEMBERS);
	if (!hdr)
		goto out;
	genl_dump_check_consistent(cb, hdr);
	if (multis_nl_put_addr(skb, MULTIS_A_GROUP_ADDR, MULTIS_A_GROUP_ADDR6,
			       &addr))
		goto out_cancel;
	nest = nla_nest_start(skb, MULTIS_A_MEMBERS);
	if (!nest)
		goto out_cancel;
	for (i = first; members && i < members->count; i++)
		if (multis_nl_put_member(skb, members->member[i]))
			break;
	/* Not even one member fits in a message: give up, do not spin. */
	if (i == first && members && i < members->count)
		goto out_cancel;
	nla_nest_end(skb, nest);
	genlmsg_end(skb, hdr);

	if (!members || i == members->count)
		cb->args[0] = 1;
	else
		multis_nl_cursor_set(cb, &members->member[i]->addr);
	ret = skb->len;
	goto out;

out_cancel:
	genlmsg_cancel(skb, hdr);
out:
	mutex_unlock(&pn->lock);
	return ret;
}

static const struct genl_ops multis_nl_ops[] = {
	{
		.cmd = MULTIS_CMD_GET_GROUP,
		.doit = multis_nl_get_group,
		.dumpit = multis_nl_dump_groups,
	}, {
		.cmd = MULTIS_CMD_JOIN,
		.doit = multis_nl_join,
		.flags = GENL_UNS_ADMIN_PERM,
	}, {
		.cmd = MULTIS_CMD_QUIT,
		.doit = multis_nl_quit,
		.flags = GENL_UNS_ADMIN_PERM,
	}, {
		.cmd = MULTIS_CMD_DEL_GROUP,
		.doit = multis_nl_del_group,
		.flags = GENL_UNS_ADMIN_PERM,
	}, {
		.cmd = MULTIS_CMD_CLEAR,
		.doit = multis_nl_clear,
		.flags = GENL_UNS_ADMIN_PERM,
	}, {
		/* Who receives a group's copies: the namespace's admin only. */
		.cmd = MULTIS_CMD_GET_MEMBERS,
		.start = multis_nl_members_start,
		.dumpit = multis_nl_dump_members,
		.flags = GENL_UNS_ADMIN_PERM,
	}, {
		.cmd = MULTIS_CMD_GET_STATS,
		.doit = multis_nl_get_stats,
	}, {
		.cmd = MULTIS_CMD_RESET_STATS,
		.doit = multis_nl_reset_stats,
		.flags = GENL_UNS_ADMIN_PERM,
	}, {
		.cmd = MULTIS_CMD_SET_RESTORED,
		.doit = multis_nl_set_restored,
		.flags = GENL_UNS_ADMIN_PERM,
	},
};

static struct genl_family multis_nl_family __ro_after_init = {
	.name		= MULTIS_GENL_NAME,
	.version	= MULTIS_GENL_VERSION,
	.maxattr	= MULTIS_A_MAX,
	.policy		= multis_nl_policy,
	.netnsok	= true,
	/* Our own lock (per namespace), not the global genl_mutex. */
	.parallel_ops	= true,
	.module		= THIS_MODULE,
	.ops		= multis_nl_ops,
	.n_ops		= ARRAY_SIZE(multis_nl_ops),
	/*
	 * Every command below it: JOIN takes NLM_F_EXCL, which the core
	 * refuses ("ambiguous or reserved bits set in nlmsg_flags") for
	 * commands from resv_start_op on.  Unknown commands are refused
	 * anyway (-EOPNOTSUPP).
	 */
	COMPAT_GENL_RESV_START_OP(__MULTIS_CMD_MAX)
};

int __init multis_netlink_init(void)
{
	return genl_register_family(&multis_nl_family);
}

void multis_netlink_uninit(void)
{
	genl_unregister_family(&multis_nl_family);
}
