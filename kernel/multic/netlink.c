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
#include <linux/mutex.h>
#include <net/genetlink.h>
#include <net/netlink.h>
#include <net/sock.h>

#include <uapi/linux/multicast_proxy.h>

static const struct nla_policy multic_nl_policy[MULTIC_A_MAX + 1] = {
	[MULTIC_A_SERVER_ADDR]	= { .type = NLA_BE32 },
	[MULTIC_A_PORT]		= { .type = NLA_U16 },
	[MULTIC_A_GROUP_ADDR]	= { .type = NLA_BE32 },
	[MULTIC_A_ENTRY_FLAGS]	= { .type = NLA_U32 },
	[MULTIC_A_REQUIRE_RESTORED] = { .type = NLA_FLAG },
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

static int multic_nl_parse_key(struct genl_info *info,
			       struct compat_nlerr *err,
			       struct multic_key *key)
{
	struct nlattr *server, *port;

	server = multic_nl_require(info, err, MULTIC_A_SERVER_ADDR,
				   "server address");
	if (!server)
		return -EINVAL;
	port = multic_nl_require(info, err, MULTIC_A_PORT, "port");
	if (!port)
		return -EINVAL;
	*key = (struct multic_key){
		.server = nla_get_in_addr(server),
		.port = htons(nla_get_u16(port)),
	};
	return 0;
}

/* An entry's counters; @pernet adds the namespace's own (NO_ENTRY). */
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
	     nla_put_u64_64bit(skb, MULTIC_STATS_A_NO_ENTRY, counters.no_entry,
			       MULTIC_STATS_A_PAD))) {
		nla_nest_cancel(skb, nest);
		return -EMSGSIZE;
	}
	nla_nest_end(skb, nest);
	return 0;
}

static size_t multic_nl_stats_size(void)
{
	return nla_total_size(0) +			/* MULTIC_A_STATS */
	       4 * nla_total_size_64bit(sizeof(u64));	/* its counters */
}

static size_t multic_nl_entry_size(void)
{
	return nla_total_size(sizeof(__be32)) +		/* SERVER_ADDR */
	       nla_total_size(sizeof(u16)) +		/* PORT */
	       nla_total_size(sizeof(__be32)) +		/* GROUP_ADDR */
	       nla_total_size(sizeof(u32)) +		/* ENTRY_FLAGS */
	       multic_nl_stats_size();
}

/* Caller holds multic_net.lock. */
static int multic_nl_put_entry(struct sk_buff *skb,
			       const struct multic_entry *entry)
{
	/* Only a broadcast entry can have a group that is not multicast. */
	u32 flags = ipv4_is_multicast(entry->group) ?
		    0 : MULTIC_ENTRY_F_BROADCAST;

	if (nla_put_in_addr(skb, MULTIC_A_SERVER_ADDR, entry->key.server) ||
	    nla_put_u16(skb, MULTIC_A_PORT, ntohs(entry->key.port)) ||
	    nla_put_in_addr(skb, MULTIC_A_GROUP_ADDR, entry->group) ||
	    nla_put_u32(skb, MULTIC_A_ENTRY_FLAGS, flags))
		return -EMSGSIZE;
	return multic_nl_put_stats(skb, &entry->stats, false);
}

static int multic_nl_get_entry(struct sk_buff *skb, struct genl_info *info)
{
	struct multic_net *mn = multic_pernet(genl_info_net(info));
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
		ret = multic_nl_put_entry(msg, entry);
	} else {
		compat_nlerr_fmt(&err, "no entry for %pI4:%u",
				 &key.server, ntohs(key.port));
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
		ret = multic_nl_put_entry(skb, entry);
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

static bool multic_nl_valid_server(__be32 addr)
{
	return !ipv4_is_multicast(addr) && !ipv4_is_lbcast(addr) &&
	       !ipv4_is_zeronet(addr) && !ipv4_is_loopback(addr);
}

/* May copies be restored to @group, with entry flags @flags? */
static int multic_nl_check_group(__be32 group, u32 flags,
				 const struct nlattr *attr,
				 struct compat_nlerr *err)
{
	if (!(flags & MULTIC_ENTRY_F_BROADCAST)) {
		if (ipv4_is_multicast(group))
			return 0;
		/* At most 79 characters: the extack message limit. */
		compat_nlerr_fmt(err,
				 "group %pI4 is not multicast (broadcast needs the broadcast flag)",
				 &group);
	} else if (ipv4_is_multicast(group) || ipv4_is_loopback(group) ||
		   ipv4_is_zeronet(group)) {
		compat_nlerr_fmt(err, "group %pI4 is not a broadcast address",
				 &group);
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
	struct multic_key key;
	u32 flags = 0;
	__be32 group;
	int ret;

	compat_nlerr_init(&err, info->extack);
	ret = multic_nl_parse_key(info, &err, &key);
	if (ret)
		goto out;
	group_attr = multic_nl_require(info, &err, MULTIC_A_GROUP_ADDR,
				       "group address");
	if (!group_attr) {
		ret = -EINVAL;
		goto out;
	}
	group = nla_get_in_addr(group_attr);
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

	if (!multic_nl_valid_server(key.server)) {
		NL_SET_BAD_ATTR(info->extack, info->attrs[MULTIC_A_SERVER_ADDR]);
		compat_nlerr_fmt(&err, "server %pI4 is not a unicast address",
				 &key.server);
		ret = -EINVAL;
		goto out;
	}
	ret = multic_nl_check_group(group, flags, group_attr, &err);
	if (ret)
		goto out;

	mutex_lock(&mn->lock);
	ret = multic_nl_check_restored(mn, info, &err);
	if (!ret) {
		/* The first entry brings the hook in; a failed add takes it out. */
		ret = multic_hook_attach(net, mn);
		if (ret)
			compat_nlerr_fmt(&err, "cannot register the netfilter hook");
		else
			ret = multic_table_add(mn, &key, group,
					       info->nlhdr->nlmsg_flags & NLM_F_REPLACE,
					       &err);
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
			ret = multic_table_del(mn, &key, &err);
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
		multic_table_clear(mn);
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
	mn->restored = true;
	mutex_unlock(&mn->lock);
	return 0;
}

static int multic_nl_get_stats(struct sk_buff *skb, struct genl_info *info)
{
	struct multic_net *mn = multic_pernet(genl_info_net(info));
	struct sk_buff *msg;
	void *hdr;
	int ret;

	msg = genlmsg_new(multic_nl_stats_size() +
			  4 * nla_total_size(sizeof(u32)) +
			  2 * nla_total_size(sizeof(u8)), GFP_KERNEL);
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
	     nla_put_u8(msg, MULTIC_A_RESTORED, mn->restored)))
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
