/* SPDX-License-Identifier: GPL-2.0 */

#ifndef _MULTIC_NETLINK_H
#define _MULTIC_NETLINK_H

int multic_netlink_init(void);
void multic_netlink_uninit(void);

#endif /* _MULTIC_NETLINK_H */
