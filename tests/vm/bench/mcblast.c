// SPDX-License-Identifier: GPL-2.0
/*
 * mcblast: send UDP datagrams for a while, the way an application would, and
 * say how many and how long the sender was blocked.
 *
 *   mcblast [-r RATE] [-l] group   SECONDS SIZE SRC GROUP PORT
 *       one sendto() per datagram to the group (multis, a relay or a VXLAN
 *       device fans it out)
 *   mcblast [-r RATE] [-l] unicast SECONDS SIZE SRC GROUP PORT MEMBER...
 *       the application sends each datagram to every member itself, one
 *       sendto() per member
 *
 * SRC is the address the socket binds to and the multicast interface
 * (IP_MULTICAST_IF; for IPv6, IPV6_MULTICAST_IF of the interface that has
 * SRC).  SRC, GROUP and the members are all IPv4 or all IPv6.  Without -r it sends as fast as it can; with -r it
 * offers RATE messages per second, each at its scheduled time (never
 * skipping one: a sender that falls behind sends the rest late, and what
 * it could not send before SECONDS is over is lost).  -l keeps
 * IP_MULTICAST_LOOP on (Linux's default) so that a relay on this host
 * receives the datagrams; otherwise it is off.
 *
 * Prints one JSON object: datagrams (application-level messages sent),
 * syscalls, seconds, start (CLOCK_MONOTONIC, s), ns_per_datagram (time the
 * sender spent per message, for the paced sender only the time in sendto()),
 * errors (sendto() calls that failed) and first_error (the first one's
 * strerror()), and, with -r, rate and offered (the messages due before SECONDS was over).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void sleep_until(double t)
{
	struct timespec ts;

	ts.tv_sec = (time_t)t;
	ts.tv_nsec = (long)((t - ts.tv_sec) * 1e9);
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL))
		;
}

/* How many messages are due in SECONDS at RATE: message n is due at n / RATE. */
static unsigned long due_slots(double rate, double seconds)
{
	unsigned long n = (unsigned long)(rate * seconds);

	return n / rate < seconds ? n + 1 : n;
}

/* An IPv4 or IPv6 address and port; the length of the sockaddr, or 0 if bad. */
static socklen_t addr(struct sockaddr_storage *ss, const char *ip, int port)
{
	struct sockaddr_in6 *sa6 = (struct sockaddr_in6 *)ss;
	struct sockaddr_in *sa = (struct sockaddr_in *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, ip, &sa->sin_addr) == 1) {
		sa->sin_family = AF_INET;
		sa->sin_port = htons(port);
		return sizeof(*sa);
	}
	if (inet_pton(AF_INET6, ip, &sa6->sin6_addr) == 1) {
		sa6->sin6_family = AF_INET6;
		sa6->sin6_port = htons(port);
		return sizeof(*sa6);
	}
	return 0;
}

/* The index of the interface that has the IPv6 address @sa6, or 0. */
static unsigned int ifindex_of(const struct sockaddr_in6 *sa6)
{
	struct ifaddrs *ifs, *ifa;
	unsigned int index = 0;

	if (getifaddrs(&ifs))
		return 0;
	for (ifa = ifs; ifa && !index; ifa = ifa->ifa_next)
		if (ifa->ifa_addr && ifa->ifa_addr->sa_family == AF_INET6 &&
		    !memcmp(&((struct sockaddr_in6 *)ifa->ifa_addr)->sin6_addr,
			    &sa6->sin6_addr, sizeof(sa6->sin6_addr)))
			index = if_nametoindex(ifa->ifa_name);
	freeifaddrs(ifs);
	return index;
}

/* Multicast TTL or hop limit 1, loopback as asked, out of SRC's interface. */
static int multicast_options(int fd, const struct sockaddr_storage *src, int loop)
{
	unsigned char ttl4 = 1, loop4 = loop;
	int hops = 1, index;

	if (src->ss_family == AF_INET)
		return setsockopt(fd, IPPROTO_IP, IP_MULTICAST_TTL, &ttl4, sizeof(ttl4)) ||
		       setsockopt(fd, IPPROTO_IP, IP_MULTICAST_LOOP, &loop4, sizeof(loop4)) ||
		       setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF,
				  &((const struct sockaddr_in *)src)->sin_addr,
				  sizeof(struct in_addr));
	index = ifindex_of((const struct sockaddr_in6 *)src);
	return !index ||
	       setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, &hops, sizeof(hops)) ||
	       setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, &loop, sizeof(loop)) ||
	       setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, &index, sizeof(index));
}

struct blast {
	int fd, unicast, nmembers;
	struct sockaddr_storage group, *members;
	socklen_t len;		/* of each sockaddr: one family for all */
	char buf[65536];
	size_t size;
	unsigned long syscalls;
	unsigned long errors;	/* sendto() calls that failed */
	int first_errno;	/* the first one's errno */
};

static void sent(struct blast *b, ssize_t ret)
{
	b->syscalls++;
	if (ret >= 0)
		return;
	if (!b->errors++)
		b->first_errno = errno;
}

/* One application message: to the group, or to every member. */
static void send_message(struct blast *b)
{
	if (!b->unicast) {
		sent(b, sendto(b->fd, b->buf, b->size, 0, (struct sockaddr *)&b->group,
			       b->len));
		return;
	}
	for (int m = 0; m < b->nmembers; m++)
		sent(b, sendto(b->fd, b->buf, b->size, 0, (struct sockaddr *)&b->members[m],
			       b->len));
}

static struct blast b;

int main(int argc, char **argv)
{
	unsigned long datagrams = 0;
	double seconds, start, elapsed, rate = 0, busy = 0, t;
	struct sockaddr_storage src;
	int opt, port, i, loop = 0;
	socklen_t srclen;

	while ((opt = getopt(argc, argv, "r:l")) != -1) {
		if (opt == 'r')
			rate = atof(optarg);
		else if (opt == 'l')
			loop = 1;
		else
			return 2;
	}
	argv += optind - 1;
	argc -= optind - 1;
	if (argc < 7) {
		fprintf(stderr, "usage: mcblast [-r RATE] [-l] group|unicast SECONDS SIZE SRC GROUP PORT [MEMBER...]\n");
		return 2;
	}
	b.unicast = !strcmp(argv[1], "unicast");
	seconds = atof(argv[2]);
	b.size = (size_t)atoi(argv[3]);
	port = atoi(argv[6]);
	srclen = addr(&src, argv[4], 0);
	b.len = addr(&b.group, argv[5], port);
	if (b.size > sizeof(b.buf) || !srclen || b.len != srclen) {
		fprintf(stderr, "mcblast: bad arguments\n");
		return 2;
	}
	if (b.unicast) {
		b.nmembers = argc - 7;
		b.members = calloc(b.nmembers ? b.nmembers : 1, sizeof(*b.members));
		for (i = 0; i < b.nmembers; i++)
			if (!b.members || addr(&b.members[i], argv[7 + i], port) != b.len) {
				fprintf(stderr, "mcblast: bad member %s\n", argv[7 + i]);
				return 2;
			}
	}
	memset(b.buf, 'x', b.size);
	b.fd = socket(src.ss_family, SOCK_DGRAM, 0);
	if (b.fd < 0 || bind(b.fd, (struct sockaddr *)&src, srclen) ||
	    multicast_options(b.fd, &src, loop)) {
		perror("mcblast: socket");
		return 1;
	}
	start = now();
	if (rate > 0) {
		/* paced: message n is due at start + n / rate */
		for (;;) {
			double due = start + datagrams / rate;

			if (due >= start + seconds)
				break;
			if (now() < due)
				sleep_until(due);
			t = now();
			if (t >= start + seconds)
				break;
			send_message(&b);
			busy += now() - t;
			datagrams++;
		}
		elapsed = now() - start;
	} else {
		do {
			/* check the clock every 16 datagrams */
			for (i = 0; i < 16; i++, datagrams++)
				send_message(&b);
			elapsed = now() - start;
		} while (elapsed < seconds);
		busy = elapsed;
	}
	printf("{\"mode\": \"%s\", \"datagrams\": %lu, \"syscalls\": %lu, \"seconds\": %.3f, "
	       "\"start\": %.6f, \"ns_per_datagram\": %.0f", argv[1], datagrams, b.syscalls,
	       elapsed, start, datagrams ? busy * 1e9 / datagrams : 0.0);
	printf(", \"errors\": %lu, \"first_error\": \"%s\"", b.errors,
	       b.errors ? strerror(b.first_errno) : "");
	if (rate > 0)
		printf(", \"rate\": %.3f, \"offered\": %lu", rate, due_slots(rate, seconds));
	printf("}\n");
	free(b.members);
	close(b.fd);
	return 0;
}
