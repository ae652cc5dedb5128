// SPDX-License-Identifier: GPL-2.0
/*
 * The "multic" generic netlink family: see
 * include/uapi/linux/multicast_proxy.h for the protocol.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include "compat.h"
#include "hook.h"
#include "multic.h"
#include "netlink.h"
#include "table.h"

#include <linux/in.h>
#include <linux/in6.h>
#include <linux/mutex.h>
#include <net/addrconf.h>
#include <net/genetlink.h>
#include <net/ipv6.h>
#include <net/netlink.h>
#include <net/sock.h>

#include <uapi/linux/multicast_proxy.h>

static const struct nla_policy multic_nl_policy[MULTIC_A_MAX + 1] = {
	[MULTIC_A_SERVER_ADDR]	= { .type = NLA_BE32 },
	[MULTIC_A_PORT]		= { .type = NLA_U16 },
	[MULTIC_A_GROUP_ADDR]	= { .type = NLA_BE32 },
	[MULTIC_A_ENTRY_FLAGS]	= { .type = NLA_U32 },
	[MULTIC_A_REQUIRE_RESTORED] = { .type = NLA_FLAG },
	[MULTIC_A_SERVER_ADDR6]	= NLA_POLICY_EXACT_LEN(sizeof(struct in6_addr)),
	[MULTIC_A_GROUP_ADDR6]	= NLA_POLICY_EXACT_LEN(sizeof(struct in6_addr)),
};

static struct genl_family multic_nl_family;

static struct nlattr *multic_nl_require(struct genl_info *info,
					struct compat_nlerr *err,
					int attrtype, const char *what)
{
	struct nlattr *attr = info->attrs[attrtype];

	if (!attr)
		compat_nlerr_fmt(err, "missing attribute: %s", what);
	return attr;
}

/*
 * A change the tools will save to the state file (MULTIC_A_REQUIRE_RESTORED)
 * is refused while the namespace holds a configuration that did not come
 * from that file: saving it would replace the file with something else.
 */
static int multic_nl_check_restored(struct multic_net *mn,
				    struct genl_info *info,
				    struct compat_nlerr *err)
{
	lockdep_assert_held(&mn->lock);
	if (!info->attrs[MULTIC_A_REQUIRE_RESTORED] || mn->restored)
		return 0;
	compat_nlerr_fmt(err,
			 "saved state not restored yet: run `service multic start`");
	return -ESTALE;
}

/*
 * A request changed the configuration when it moved the entries' generation
 * on from @before (read when it took the lock): the configuration's
 * generation moves on by one, however many entries the request touched.
 */
static void multic_nl_changed(struct multic_net *mn, u32 before)
{
	lockdep_assert_held(&mn->lock);
	if (mn->generation != before)
		mn->config_gen++;
}

/*
 * The address of exactly one of @a4 (IPv4, kept IPv4-mapped) and @a6
 * (IPv6, which must not be IPv4-mapped); -ENODATA when neither is given.
 */
static int multic_nl_get_addr(struct genl_info *info, struct compat_nlerr *err,
			      int attr4, int attr6, const char *what,
			      struct in6_addr *addr)
{
	const struct nlattr *a4 = info->attrs[attr4], *a6 = info->attrs[attr6];

	if (a4 && a6) {
		NL_SET_BAD_ATTR(info->extack, a6);
		compat_nlerr_fmt(err, "%s: give an IPv4 or an IPv6 address, not both",
				 what);
		return -EINVAL;
	}
	if (a4) {
		ipv6_addr_set_v4mapped(nla_get_in_addr(a4), addr);
		return 0;
	}
	if (!a6) {
		compat_nlerr_fmt(err, "missing attribute: %s address", what);
		return -ENODATA;
	}
	*addr = nla_get_in6_addr(a6);
	if (multic_addr_is_v4(addr)) {
		NL_SET_BAD_ATTR(info->extack, a6);
		compat_nlerr_fmt(err, "%s %pI6c is IPv4-mapped (give %pI4)",
				 what, addr, &addr->s6_addr32[3]);
		return -EINVAL;
	}
	return 0;
}

static int multic_nl_put_addr(struct sk_buff *skb, int attr4, int attr6,
			      const struct in6_addr *addr)
{
	if (multic_addr_is_v4(addr))
		return nla_put_in_addr(skb, attr4, addr->s6_addr32[3]);
	return nla_put_in6_addr(skb, attr6, addr);
}

static int multic_nl_parse_key(struct genl_info *info,
			       struct compat_nlerr *err,
			       struct multic_key *key)
{
	struct nlattr *port;
	int ret;

	*key = (struct multic_key){};
	ret = multic_nl_get_addr(info, err, MULTIC_A_SERVER_ADDR,
				 MULTIC_A_SERVER_ADDR6, "server", &key->server);
	if (ret)
		return ret == -ENODATA ? -EINVAL : ret;
	port = multic_nl_require(info, err, MULTIC_A_PORT, "port");
	if (!port)
		return -EINVAL;
	key->port = htons(nla_get_u16(port));
	return 0;
}

/* An entry's counters; @pernet adds the namespace's own (NO_ENTRY, NOT_UDP). */
static int multic_nl_put_stats(struct sk_buff *skb,
			       const struct multic_stats *stats, bool pernet)
{
	struct multic_counters counters;
	struct nlattr *nest;

	multic_stats_read(stats, &counters);
	nest = nla_nest_start(skb, MULTIC_A_STATS);
	if (!nest)
		return -EMSGSIZE;
	if (nla_put_u64_64bit(skb, MULTIC_STATS_A_PACKETS, counters.packets,
			      MULTIC_STATS_A_PAD) ||
	    nla_put_u64_64bit(skb, MULTIC_STATS_A_BYTES, counters.bytes,
			      MULTIC_STATS_A_PAD) ||
	    nla_put_u64_64bit(skb, MULTIC_STATS_A_NOT_LOCAL, counters.not_local,
			      MULTIC_STATS_A_PAD) ||
	    nla_put_u64_64bit(skb, MULTIC_STATS_A_DROP_NOMEM,
			      counters.drop_nomem, MULTIC_STATS_A_PAD) ||
	    (pernet &&
	     (nla_put_u64_64bit(skb, MULTIC_STATS_A_NO_ENTRY, counters.no_entry,
				MULTIC_STATS_A_PAD) ||
	      nla_put_u64_64bit(skb, MULTIC_STATS_A_NOT_UDP, counters.not_udp,
				MULTIC_STATS_A_PAD)))) {
		nla_nest_cancel(skb, nest);
		return -EMSGSIZE;
	}
	nla_nest_end(skb, nest);
	return 0;
}

/* An entry's counters, or with @pernet the namespace's (two more). */
static size_t multic_nl_stats_size(bool pernet)
{
	return nla_total_size(0) +			/* MULTIC_A_STATS */
	       (pernet ? 6 : 4) * nla_total_size_64bit(sizeof(u64));
}

static size_t multic_nl_entry_size(void)
{
	return nla_total_size(sizeof(struct in6_addr)) + /* SERVER_ADDR(6) */
	       nla_total_size(sizeof(u16)) +		/* PORT */
	       nla_total_size(sizeof(struct in6_addr)) + /* GROUP_ADDR(6) */
	       nla_total_size(sizeof(u32)) +		/* ENTRY_FLAGS */
	       multic_nl_stats_size(false);
}

/* Caller holds multic_net.lock. */
static int multic_nl_put_entry(struct sk_buff *skb, struct multic_net *mn,
			       const struct multic_entry *entry)
{
	const struct in6_addr *group = multic_entry_group(mn, entry);
	u32 flags = 0;

	/* Only a broadcast entry (IPv4) can have a group that is not multicast. */
	if (multic_addr_is_v4(group) && !ipv4_is_multicast(group->s6_addr32[3]))
		flags = MULTIC_ENTRY_F_BROADCAST;
	if (multic_nl_put_addr(skb, MULTIC_A_SERVER_ADDR, MULTIC_A_SERVER_ADDR6,
			       &entry->key.server) ||
	    nla_put_u16(skb, MULTIC_A_PORT, ntohs(entry->key.port)) ||
	    multic_nl_put_addr(skb, MULTIC_A_GROUP_ADDR, MULTIC_A_GROUP_ADDR6,
			       group) ||
	    nla_put_u32(skb, MULTIC_A_ENTRY_FLAGS, flags))
		return -EMSGSIZE;
	return multic_nl_put_stats(skb, &entry->stats, false);
}

static int multic_nl_get_entry(struct sk_buff *skb, struct genl_info *info)
{
	struct multic_net *mn = multic_pernet(genl_info_net(info));
	char key_str[MULTIC_KEYSTRLEN];
	struct multic_entry *entry;
	struct compat_nlerr err;
	struct multic_key key;
	struct sk_buff *msg;
	void *hdr;
	int ret;

	compat_nlerr_init(&err, info->extack);
	ret = multic_nl_parse_key(info, &err, &key);
	if (ret)
		goto out;
	msg = genlmsg_new(multic_nl_entry_size(), GFP_KERNEL);
	if (!msg) {
		compat_nlerr_fmt(&err, "out of memory");
		ret = -ENOMEM;
		goto out;
	}
	hdr = genlmsg_put_reply(msg, info, &multic_nl_family, 0,
				MULTIC_CMD_GET_ENTRY);
	if (!hdr) {
		ret = -EMSGSIZE;
		goto err_free;
	}

	mutex_lock(&mn->lock);
	entry = multic_table_find(mn, &key);
	if (entry) {
		ret = multic_nl_put_entry(msg, mn, entry);
	} else {
		compat_nlerr_fmt(&err, "no entry for %s",
				 multic_key_str(&key, key_str));
		ret = -ENOENT;
	}
	mutex_unlock(&mn->lock);
	if (ret)
		goto err_free;

	genlmsg_end(msg, hdr);
	return genlmsg_reply(msg, info);

err_free:
	nlmsg_free(msg);
out:
	return compat_nlerr_finish(&err, skb, info->nlhdr, ret);
}

/*
 * One message per entry, as many as fit; cb->args[0] counts the entries
 * already sent.  A change between two parts flags the dump NLM_F_DUMP_INTR.
 */
static int multic_nl_dump_entries(struct sk_buff *skb,
				  struct netlink_callback *cb)
{
	struct multic_net *mn = multic_pernet(sock_net(skb->sk));
	unsigned long skip = cb->args[0], index = 0;
	struct multic_entry *entry;
	int ret = 0;

	mutex_lock(&mn->lock);
	cb->seq = mn->generation;
	list_for_each_entry(entry, &mn->entry_list, list) {
		void *hdr;

		if (index < skip) {
			index++;
			continue;
		}
		hdr = genlmsg_put(skb, NETLINK_CB(cb->skb).portid,
				  cb->nlh->nlmsg_seq, &multic_nl_family,
				  NLM_F_MULTI, MULTIC_CMD_GET_ENTRY);
		if (!hdr) {
			ret = -EMSGSIZE;
			break;
		}
		genl_dump_check_consistent(cb, hdr);
		ret = multic_nl_put_entry(skb, mn, entry);
		if (ret) {
			genlmsg_cancel(skb, hdr);
			break;
		}
		genlmsg_end(skb, hdr);
		index++;
	}
	mutex_unlock(&mn->lock);

	cb->args[0] = index;
	/* Not even one entry fits in an empty message: give up, loudly. */
	if (ret && !skb->len)
		return ret;
	return skb->len;
}

/* A server is a unicast address of its family. */
static int multic_nl_check_server(const struct in6_addr *server,
				  const struct nlattr *attr,
				  struct compat_nlerr *err)
{
	char buf[INET6_ADDRSTRLEN];

	if (multic_addr_is_v4(server)) {
		__be32 addr = server->s6_addr32[3];

		if (!ipv4_is_multicast(addr) && !ipv4_is_lbcast(addr) &&
		    !ipv4_is_zeronet(addr) && !ipv4_is_loopback(addr))
			return 0;
	} else if (!ipv6_addr_is_multicast(server) &&
		   !ipv6_addr_loopback(server) && !ipv6_addr_any(server)) {
		/* IPv4-mapped: refused when parsed. */
		return 0;
	}
	NL_SET_BAD_ATTR(err->extack, attr);
	compat_nlerr_fmt(err, "server %s is not a unicast address",
			 multic_addr_str(server, buf));
	return -EINVAL;
}

/*
 * May copies from @server be restored to @group, with entry flags @flags?
 * One family per entry; an IPv6 group is multicast beyond this host.
 */
static int multic_nl_check_group(const struct in6_addr *server,
				 const struct in6_addr *group, u32 flags,
				 const struct nlattr *attr,
				 struct compat_nlerr *err)
{
	char group_str[INET6_ADDRSTRLEN], server_str[INET6_ADDRSTRLEN];
	__be32 addr = group->s6_addr32[3];

	multic_addr_str(group, group_str);
	if (multic_addr_is_v4(server) != multic_addr_is_v4(group)) {
		/* At most 79 characters: the extack message limit. */
		compat_nlerr_fmt(err, "group %s: server %s is %s", group_str,
				 multic_addr_str(server, server_str),
				 multic_addr_is_v4(server) ? "IPv4" : "IPv6");
	} else if (!multic_addr_is_v4(group)) {
		if (flags & MULTIC_ENTRY_F_BROADCAST)
			compat_nlerr_fmt(err, "group %s: IPv6 has no broadcast",
					 group_str);
		else if (!ipv6_addr_is_multicast(group))
			compat_nlerr_fmt(err, "group %s is not multicast (ff00::/8)",
					 group_str);
		else if (IPV6_ADDR_MC_SCOPE(group) <= IPV6_ADDR_SCOPE_NODELOCAL)
			compat_nlerr_fmt(err, "group %s: scope %x never leaves the host",
					 group_str, IPV6_ADDR_MC_SCOPE(group));
		else
			return 0;
	} else if (!(flags & MULTIC_ENTRY_F_BROADCAST)) {
		if (ipv4_is_multicast(addr))
			return 0;
		compat_nlerr_fmt(err,
				 "group %s is not multicast (broadcast needs the broadcast flag)",
				 group_str);
	} else if (ipv4_is_multicast(addr) || ipv4_is_loopback(addr) ||
		   ipv4_is_zeronet(addr)) {
		compat_nlerr_fmt(err, "group %s is not a broadcast address",
				 group_str);
	} else {
		return 0;
	}
	NL_SET_BAD_ATTR(err->extack, attr);
	return -EINVAL;
}

static int multic_nl_add(struct sk_buff *skb, struct genl_info *info)
{
	struct net *net = genl_info_net(info);
	struct multic_net *mn = multic_pernet(net);
	struct nlattr *group_attr, *flags_attr;
	struct compat_nlerr err;
	struct in6_addr group;
	struct multic_key key;
	u32 flags = 0;
	int ret;

	compat_nlerr_init(&err, info->extack);
	ret = multic_nl_parse_key(info, &err, &key);
	if (ret)
		goto out;
	ret = multic_nl_get_addr(info, &err, MULTIC_A_GROUP_ADDR,
				 MULTIC_A_GROUP_ADDR6, "group", &group);
	if (ret) {
		ret = -EINVAL;
		goto out;
	}
	group_attr = info->attrs[MULTIC_A_GROUP_ADDR] ?:
		     info->attrs[MULTIC_A_GROUP_ADDR6];
	flags_attr = info->attrs[MULTIC_A_ENTRY_FLAGS];
	if (flags_attr)
		flags = nla_get_u32(flags_attr);
	if (flags & ~MULTIC_ENTRY_F_ALL) {
		NL_SET_BAD_ATTR(info->extack, flags_attr);
		compat_nlerr_fmt(&err, "unknown entry flags 0x%x",
				 flags & ~MULTIC_ENTRY_F_ALL);
		ret = -EOPNOTSUPP;
		goto out;
	}

	ret = multic_nl_check_server(&key.server,
				     info->attrs[MULTIC_A_SERVER_ADDR] ?:
				     info->attrs[MULTIC_A_SERVER_ADDR6], &err);
	if (ret)
		goto out;
	ret = multic_nl_check_group(&key.server, &group, flags, group_attr,
				    &err);
	if (ret)
		goto out;

	mutex_lock(&mn->lock);
	ret = multic_nl_check_restored(mn, info, &err);
	if (!ret) {
		/*
		 * The first entry of a family brings its hook in; a failed
		 * add takes it out again.
		 */
		u32 before = mn->generation;

		ret = multic_hook_attach(net, mn, multic_key_family(&key));
		if (ret)
			compat_nlerr_fmt(&err, "cannot register the netfilter hook");
		else
			ret = multic_table_add(mn, &key, &group,
					       info->nlhdr->nlmsg_flags & NLM_F_REPLACE,
					       &err);
		multic_nl_changed(mn, before);
		multic_hook_sync(net, mn);
	}
	mutex_unlock(&mn->lock);
out:
	return compat_nlerr_finish(&err, skb, info->nlhdr, ret);
}

static int multic_nl_del(struct sk_buff *skb, struct genl_info *info)
{
	struct net *net = genl_info_net(info);
	struct multic_net *mn = multic_pernet(net);
	struct compat_nlerr err;
	struct multic_key key;
	int ret;

	compat_nlerr_init(&err, info->extack);
	ret = multic_nl_parse_key(info, &err, &key);
	if (!ret) {
		mutex_lock(&mn->lock);
		ret = multic_nl_check_restored(mn, info, &err);
		if (!ret) {
			u32 before = mn->generation;

			ret = multic_table_del(mn, &key, &err);
			multic_nl_changed(mn, before);
			multic_hook_sync(net, mn);
		}
		mutex_unlock(&mn->lock);
	}
	return compat_nlerr_finish(&err, skb, info->nlhdr, ret);
}

static int multic_nl_clear(struct sk_buff *skb, struct genl_info *info)
{
	struct net *net = genl_info_net(info);
	struct multic_net *mn = multic_pernet(net);
	struct compat_nlerr err;
	int ret;

	compat_nlerr_init(&err, info->extack);
	mutex_lock(&mn->lock);
	ret = multic_nl_check_restored(mn, info, &err);
	if (!ret) {
		u32 before = mn->generation;

		multic_table_clear(mn);
		multic_nl_changed(mn, before);
		multic_hook_sync(net, mn);
	}
	mutex_unlock(&mn->lock);
	return compat_nlerr_finish(&err, skb, info->nlhdr, ret);
}

/* The namespace now holds the saved state: see the uapi header. */
static int multic_nl_set_restored(struct sk_buff *skb, struct genl_info *info)
{
	struct multic_net *mn = multic_pernet(genl_info_net(info));

	mutex_lock(&mn->lock);
	if (!mn->restored) {
		mn->restored = true;
		mn->config_gen++;
	}
	mutex_unlock(&mn->lock);
	return 0;
}

static int multic_nl_get_stats(struct sk_buff *skb, struct genl_info *info)
{
	struct multic_net *mn = multic_pernet(genl_info_net(info));
	struct sk_buff *msg;
	void *hdr;
	int ret;

	msg = genlmsg_new(multic_nl_stats_size(true) +
			  4 * nla_total_size(sizeof(u32)) +
			  2 * nla_total_size(sizeof(u8)) +
			  nla_total_size_64bit(sizeof(u64)), GFP_KERNEL);
	if (!msg) {
		NL_SET_ERR_MSG(info->extack, "out of memory");
		return -ENOMEM;
	}
	hdr = genlmsg_put_reply(msg, info, &multic_nl_family, 0,
				MULTIC_CMD_GET_STATS);
	if (!hdr) {
		ret = -EMSGSIZE;
		goto err_free;
	}

	mutex_lock(&mn->lock);
	ret = multic_nl_put_stats(msg, &mn->stats, true);
	if (!ret &&
	    (nla_put_u32(msg, MULTIC_A_ENTRY_COUNT, mn->entry_count) ||
	     nla_put_u32(msg, MULTIC_A_GROUP_COUNT, mn->group_count) ||
	     nla_put_u8(msg, MULTIC_A_RESTORED, mn->restored) ||
	     nla_put_u64_64bit(msg, MULTIC_A_GENERATION, mn->config_gen,
			       MULTIC_A_PAD)))
		ret = -EMSGSIZE;
	mutex_unlock(&mn->lock);
	if (ret)
		goto err_free;
	if (nla_put_u32(msg, MULTIC_A_MAX_GROUPS, READ_ONCE(multic_max_groups)) ||
	    nla_put_u32(msg, MULTIC_A_MAX_ENTRIES, READ_ONCE(multic_max_entries)) ||
	    nla_put_u8(msg, MULTIC_A_MARKER_TOS, READ_ONCE(multic_marker_tos))) {
		ret = -EMSGSIZE;
		goto err_free;
	}

	genlmsg_end(msg, hdr);
	return genlmsg_reply(msg, info);

err_free:
	nlmsg_free(msg);
	return ret;
}

static int multic_nl_reset_stats(struct sk_buff *skb, struct genl_info *info)
{
	struct multic_net *mn = multic_pernet(genl_info_net(info));

	mutex_lock(&mn->lock);
	multic_stats_reset(&mn->stats);
	multic_table_reset_stats(mn);
	mutex_unlock(&mn->lock);
	return 0;
}

static const struct genl_small_ops multic_nl_ops[] = {
	{
		/* Which servers this host takes copies from: the admin only. */
		.cmd = MULTIC_CMD_GET_ENTRY,
		.doit = multic_nl_get_entry,
		.dumpit = multic_nl_dump_entries,
		.flags = GENL_UNS_ADMIN_PERM,
	}, {
		.cmd = MULTIC_CMD_ADD,
		.doit = multic_nl_add,
		.flags = GENL_UNS_ADMIN_PERM,
	}, {
		.cmd = MULTIC_CMD_DEL,
		.doit = multic_nl_del,
		.flags = GENL_UNS_ADMIN_PERM,
	}, {
		.cmd = MULTIC_CMD_CLEAR,
		.doit = multic_nl_clear,
		.flags = GENL_UNS_ADMIN_PERM,
	}, {
		.cmd = MULTIC_CMD_GET_STATS,
		.doit = multic_nl_get_stats,
	}, {
		.cmd = MULTIC_CMD_RESET_STATS,
		.doit = multic_nl_reset_stats,
		.flags = GENL_UNS_ADMIN_PERM,
	}, {
		.cmd = MULTIC_CMD_SET_RESTORED,
		.doit = multic_nl_set_restored,
		.flags = GENL_UNS_ADMIN_PERM,
	},
};

static struct genl_family multic_nl_family __ro_after_init = {
	.name = MULTIC_GENL_NAME,
	.version = MULTIC_GENL_VERSION,
	.maxattr = MULTIC_A_MAX,
	.policy = multic_nl_policy,
	.netnsok = true,
	.parallel_ops = true,
	.module = THIS_MODULE,
	.small_ops = multic_nl_ops,
	.n_small_ops = ARRAY_SIZE(multic_nl_ops),
	COMPAT_GENL_RESV_START_OP(MULTIC_CMD_MAX + 1)
};

int __init multic_netlink_init(void)
{
	return genl_register_family(&multic_nl_family);
}

void multic_netlink_uninit(void)
{
	genl_unregister_family(&multic_nl_family);
}
