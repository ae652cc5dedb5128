/* SPDX-License-Identifier: GPL-2.0 */

#ifndef _MULTIS_NETLINK_H
#define _MULTIS_NETLINK_H

int multis_netlink_init(void);
void multis_netlink_uninit(void);

#endif /* _MULTIS_NETLINK_H */
