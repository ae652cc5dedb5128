// SPDX-License-Identifier: GPL-2.0
/*
 * mcrelay: the user-space alternative to multis.  On the sending host, receive
 * the application's multicast datagrams and send one unicast copy of each to
 * every member, as a good relay would: a 1 MiB receive buffer, recvmmsg() of up
 * to 8 datagrams at a time and one sendmmsg() for all their copies (up to
 * 8 x 128 = 1024 per call).
 *
 *   mcrelay SECONDS GRACE IFADDR GROUP PORT MEMBER...
 *
 * The receiving socket is bound to GROUP:PORT and joins GROUP on the interface
 * of IFADDR; the application's socket keeps IP_MULTICAST_LOOP on (Linux's
 * default), so the kernel loops each datagram back to it.  Copies go out from
 * a socket bound to IFADDR.  The relay says "ready" once it has joined, then
 * works until SECONDS + GRACE after the first datagram arrived (what arrives
 * later, or is still queued then, is not relayed) or until nothing came for
 * 2 s, and prints one JSON object: first and end (CLOCK_MONOTONIC, s),
 * relayed (datagrams), copies (sent), send_errors, drops (datagrams the
 * socket dropped because its buffer was full) and busy_ns (time not spent
 * waiting for a datagram).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 8
#define MAX_MEMBERS 128
#define RCVBUF (1 << 20)

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int addr(struct sockaddr_in *sa, const char *ip, int port)
{
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_port = htons(port);
	return inet_pton(AF_INET, ip, &sa->sin_addr) == 1 ? 0 : -1;
}

static char bufs[BATCH][65536];
static struct iovec rx_iov[BATCH], tx_iov[BATCH];
static struct mmsghdr rx_msgs[BATCH], tx_msgs[BATCH * MAX_MEMBERS];
static struct sockaddr_in members[MAX_MEMBERS];
static int nmembers;
static unsigned long copies, send_errors;

static int open_rx(const char *ifaddr, const char *group, int port)
{
	struct sockaddr_in sa;
	struct ip_mreq mreq;
	int one = 1, rcvbuf = RCVBUF, fd;

	fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0 || addr(&sa, group, port))
		return -1;
	memset(&mreq, 0, sizeof(mreq));
	mreq.imr_multiaddr = sa.sin_addr;
	if (inet_pton(AF_INET, ifaddr, &mreq.imr_interface) != 1)
		return -1;
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)))
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    setsockopt(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mreq, sizeof(mreq)))
		return -1;
	return fd;
}

static int open_tx(const char *ifaddr)
{
	struct sockaddr_in sa;
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	if (fd < 0 || addr(&sa, ifaddr, 0) || bind(fd, (struct sockaddr *)&sa, sizeof(sa)))
		return -1;
	return fd;
}

/* One copy of each of the n datagrams received for every member, in few sendmmsg() calls. */
static void fan_out(int tx, int n)
{
	int total = 0, done = 0;

	for (int i = 0; i < n; i++) {
		tx_iov[i].iov_base = bufs[i];
		tx_iov[i].iov_len = rx_msgs[i].msg_len;
		for (int m = 0; m < nmembers; m++, total++) {
			struct msghdr *h = &tx_msgs[total].msg_hdr;

			h->msg_name = &members[m];
			h->msg_namelen = sizeof(members[m]);
			h->msg_iov = &tx_iov[i];
			h->msg_iovlen = 1;
		}
	}
	while (done < total) {
		int sent = sendmmsg(tx, tx_msgs + done, total - done, 0);

		if (sent < 0) {
			if (errno == EINTR)
				continue;
			send_errors++;
			done++;	/* skip the copy that failed */
			continue;
		}
		copies += sent;
		done += sent;
	}
}

static unsigned int socket_drops(int fd)
{
	unsigned int meminfo[SK_MEMINFO_VARS] = { 0 };
	socklen_t len = sizeof(meminfo);

	if (getsockopt(fd, SOL_SOCKET, SO_MEMINFO, meminfo, &len))
		return 0;
	return meminfo[SK_MEMINFO_DROPS];
}

int main(int argc, char **argv)
{
	double seconds, grace, first = 0, deadline = 0, last = 0, t, busy = 0;
	unsigned long relayed = 0;
	int rx, tx, port, i;

	if (argc < 7 || argc - 6 > MAX_MEMBERS) {
		fprintf(stderr, "usage: mcrelay SECONDS GRACE IFADDR GROUP PORT MEMBER... (at most %d)\n",
			MAX_MEMBERS);
		return 2;
	}
	seconds = atof(argv[1]);
	grace = atof(argv[2]);
	port = atoi(argv[5]);
	nmembers = argc - 6;
	for (i = 0; i < nmembers; i++)
		if (addr(&members[i], argv[6 + i], port)) {
			fprintf(stderr, "mcrelay: bad member %s\n", argv[6 + i]);
			return 2;
		}
	rx = open_rx(argv[3], argv[4], port);
	tx = open_tx(argv[3]);
	if (rx < 0 || tx < 0) {
		perror("mcrelay: socket");
		return 1;
	}
	for (i = 0; i < BATCH; i++) {
		rx_iov[i].iov_base = bufs[i];
		rx_iov[i].iov_len = sizeof(bufs[i]);
		rx_msgs[i].msg_hdr.msg_iov = &rx_iov[i];
		rx_msgs[i].msg_hdr.msg_iovlen = 1;
	}
	printf("ready\n");
	fflush(stdout);
	for (;;) {
		struct pollfd pfd = { .fd = rx, .events = POLLIN };
		int n;

		t = now();
		if (first && t >= deadline)
			break;
		n = recvmmsg(rx, rx_msgs, BATCH, MSG_DONTWAIT, NULL);
		if (n <= 0) {
			/* waiting is not work */
			int wait_ms = 60000;

			if (first) {
				if (t - last > 2.0)
					break;
				wait_ms = (int)((deadline - t) * 1000) + 1;
				wait_ms = wait_ms < 2000 ? wait_ms : 2000;
			}
			if (poll(&pfd, 1, wait_ms) == 0 && !first)
				break;	/* the application never sent */
			continue;
		}
		if (!first) {
			first = t;
			deadline = first + seconds + grace;
		}
		fan_out(tx, n);
		relayed += n;
		last = now();
		busy += last - t;
	}
	printf("{\"first\": %.6f, \"end\": %.6f, \"relayed\": %lu, \"copies\": %lu, "
	       "\"send_errors\": %lu, \"drops\": %u, \"busy_ns\": %.0f}\n", first, now(), relayed,
	       copies, send_errors, socket_drops(rx), busy * 1e9);
	close(rx);
	close(tx);
	return 0;
}
