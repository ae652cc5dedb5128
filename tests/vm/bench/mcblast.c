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
 * (IP_MULTICAST_IF).  Without -r it sends as fast as it can; with -r it
 * offers RATE messages per second, each at its scheduled time (never
 * skipping one: a sender that falls behind sends the rest late, and what
 * it could not send before SECONDS is over is lost).  -l keeps
 * IP_MULTICAST_LOOP on (Linux's default) so that a relay on this host
 * receives the datagrams; otherwise it is off.
 *
 * Prints one JSON object: datagrams (application-level messages sent),
 * syscalls, seconds, start (CLOCK_MONOTONIC, s), ns_per_datagram (time the
 * sender spent per message, for the paced sender only the time in sendto())
 * and, with -r, rate and offered (the messages due before SECONDS was over).
 */
#include <arpa/inet.h>
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

static int addr(struct sockaddr_in *sa, const char *ip, int port)
{
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_port = htons(port);
	return inet_pton(AF_INET, ip, &sa->sin_addr) == 1 ? 0 : -1;
}

struct blast {
	int fd, unicast, nmembers;
	struct sockaddr_in group, *members;
	char buf[65536];
	size_t size;
	unsigned long syscalls;
};

/* One application message: to the group, or to every member. */
static void send_message(struct blast *b)
{
	if (!b->unicast) {
		sendto(b->fd, b->buf, b->size, 0, (struct sockaddr *)&b->group, sizeof(b->group));
		b->syscalls++;
		return;
	}
	for (int m = 0; m < b->nmembers; m++, b->syscalls++)
		sendto(b->fd, b->buf, b->size, 0, (struct sockaddr *)&b->members[m],
		       sizeof(b->members[m]));
}

static struct blast b;

int main(int argc, char **argv)
{
	unsigned char ttl = 1, loop = 0;
	unsigned long datagrams = 0;
	double seconds, start, elapsed, rate = 0, busy = 0, t;
	struct sockaddr_in src;
	int opt, port, i;

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
	if (b.size > sizeof(b.buf) || addr(&src, argv[4], 0) || addr(&b.group, argv[5], port)) {
		fprintf(stderr, "mcblast: bad arguments\n");
		return 2;
	}
	if (b.unicast) {
		b.nmembers = argc - 7;
		b.members = calloc(b.nmembers ? b.nmembers : 1, sizeof(*b.members));
		for (i = 0; i < b.nmembers; i++)
			if (!b.members || addr(&b.members[i], argv[7 + i], port)) {
				fprintf(stderr, "mcblast: bad member %s\n", argv[7 + i]);
				return 2;
			}
	}
	memset(b.buf, 'x', b.size);
	b.fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (b.fd < 0 || bind(b.fd, (struct sockaddr *)&src, sizeof(src)) ||
	    setsockopt(b.fd, IPPROTO_IP, IP_MULTICAST_TTL, &ttl, sizeof(ttl)) ||
	    setsockopt(b.fd, IPPROTO_IP, IP_MULTICAST_LOOP, &loop, sizeof(loop)) ||
	    setsockopt(b.fd, IPPROTO_IP, IP_MULTICAST_IF, &src.sin_addr, sizeof(src.sin_addr))) {
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
	if (rate > 0)
		printf(", \"rate\": %.3f, \"offered\": %lu", rate, due_slots(rate, seconds));
	printf("}\n");
	free(b.members);
	close(b.fd);
	return 0;
}
