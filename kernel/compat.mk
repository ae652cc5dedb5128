# SPDX-License-Identifier: GPL-2.0
#
# Kernel feature checks, shared by multis/Kbuild and multic/Kbuild.
#
# Each check greps the headers of the kernel being built against for one API
# change and adds a -DCOMPAT_HAVE_* flag to ccflags-y.  kernel/compat.h is the
# only consumer of those flags: the .c files never test a kernel version.  We
# probe features instead of LINUX_VERSION_CODE because distribution kernels
# (Debian stable updates, RHEL, SUSE) backport them.
#
# $(srctree) is the kernel source tree kbuild runs in (for Debian's split
# headers: /usr/src/linux-headers-<ver>-common).

compat_inc := $(srctree)/include

ifeq ($(wildcard $(compat_inc)/net/genetlink.h),)
$(error compat.mk: no kernel headers under $(compat_inc))
endif

# $(call compat_struct_has,HEADER,STRUCT,ERE): a line of "struct STRUCT {...};"
# in include/HEADER matches the extended regular expression ERE.
compat_struct_has = $(shell sed -n '/^struct $(2) {/,/^};/p' \
	$(compat_inc)/$(1) 2>/dev/null | grep -qE '$(3)' && echo y)

# $(call compat_file_has,HEADER,ERE): a line of include/HEADER matches ERE.
compat_file_has = $(shell grep -qsE '$(2)' $(compat_inc)/$(1) && echo y)

# 6.1: genl_family.resv_start_op, the first command whose genlmsghdr.reserved
# and nlmsg_flags the core validates.
ifeq ($(call compat_struct_has,net/genetlink.h,genl_family,resv_start_op;),y)
ccflags-y += -DCOMPAT_HAVE_GENL_RESV_START_OP
endif

# 6.2: struct genl_dumpit_info embeds a struct genl_info (info->info.attrs);
# before, it had the parsed attributes itself (info->attrs).
ifeq ($(call compat_struct_has,net/genetlink.h,genl_dumpit_info,struct genl_info[[:space:]]+info;),y)
ccflags-y += -DCOMPAT_HAVE_GENL_DUMPIT_INFO_INFO
else ifneq ($(call compat_struct_has,net/genetlink.h,genl_dumpit_info,struct nlattr[[:space:]]+\*\*attrs;),y)
$(error compat.mk: unknown layout of struct genl_dumpit_info in $(compat_inc)/net/genetlink.h)
endif

# 6.2: struct netlink_ext_ack._msg_buf, where NL_SET_ERR_MSG_FMT() formats.
ifeq ($(call compat_struct_has,linux/netlink.h,netlink_ext_ack,_msg_buf\[),y)
ccflags-y += -DCOMPAT_HAVE_EXTACK_MSG_BUF
endif

# multis

# 6.11: local_lock_nested_bh(), a per-CPU lock for data that BH-disabled
# sections share (a real lock on PREEMPT_RT).
ifeq ($(call compat_file_has,linux/local_lock.h,define local_lock_nested_bh),y)
ccflags-y += -DCOMPAT_HAVE_LOCAL_LOCK_NESTED_BH
endif

# 6.5: the GSO helpers (skb_gso_validate_network_len()) moved from
# linux/skbuff.h to their own header, net/gso.h.
ifeq ($(call compat_file_has,net/gso.h,skb_gso_validate_network_len),y)
ccflags-y += -DCOMPAT_HAVE_NET_GSO_H
endif

# multic

# 5.13: nf_defrag_ipv4_disable(), the counterpart of nf_defrag_ipv4_enable().
ifeq ($(call compat_file_has,net/netfilter/ipv4/nf_defrag_ipv4.h,nf_defrag_ipv4_disable),y)
ccflags-y += -DCOMPAT_HAVE_NF_DEFRAG_IPV4_DISABLE
endif

# 5.13: nf_defrag_ipv6_disable(), the counterpart of nf_defrag_ipv6_enable()
# (the same change as for IPv4).
ifeq ($(call compat_file_has,net/netfilter/ipv6/nf_defrag_ipv6.h,nf_defrag_ipv6_disable),y)
ccflags-y += -DCOMPAT_HAVE_NF_DEFRAG_IPV6_DISABLE
endif
