/*
 * The POSIX host port: the device on a pty (the default) or a TCP port, with the devkit
 * plant behind its pins. The first line on stdout is where to connect (a pty path, or
 * socket://HOST:PORT), as `printer-emu serve` prints it; nothing else goes to stdout.
 *
 *     printer-mcu-host [--pty | --tcp HOST:PORT] [--verbose]
 *
 * Like a UART, the line is always there: on a pty the device keeps the slave open
 * itself, so a host that closes it and opens it again finds the same line (the device
 * hears silence meanwhile, and ends its session after dead_after). On TCP one client at
 * a time is the line; with none, what the device sends is lost, as on an unplugged UART.
 *
 * A reset (board.reset, the watchdog) reboots the device in place: a new boot nonce, the
 * plant powered up again, the same pty. SIGTERM and SIGINT end the process.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "plant.h"
#include "printer_mcu/device.h"
#include "printer_mcu/port.h"

static uint64_t start_ns;
static int line_fd = -1;   /* where bytes go: the pty master, or the TCP client */
static int listen_fd = -1; /* TCP only */
static int pty_slave_fd = -1;
static bool verbose;
static volatile sig_atomic_t stopping;

static enum mcu_reset_cause reset_cause = MCU_RESET_POWER_ON;
static uint32_t reset_count;
static bool reset_requested;

static uint64_t last_heard_us; /* the last byte from the host */
static uint64_t last_flush_us;

static uint8_t out_buf[16384];
static size_t out_len;
static unsigned long out_dropped;

/* -- port.h ------------------------------------------------------------------------------ */

static uint64_t monotonic_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t port_now_us(void) { return (monotonic_ns() - start_ns) / 1000u; }

uint64_t port_entropy(void)
{
	uint64_t value = 0;
	if (getrandom(&value, sizeof value, 0) != (ssize_t)sizeof value) {
		value = monotonic_ns() ^ ((uint64_t)getpid() << 32);
	}
	return value;
}

void port_uart_flush(void)
{
	size_t done = 0;
	while (done < out_len && line_fd >= 0) {
		ssize_t n = write(line_fd, out_buf + done, out_len - done);
		if (n > 0) {
			done += (size_t)n;
		} else if (n < 0 && errno == EINTR) {
			continue;
		} else {
			break; /* nobody reads (EAGAIN), or the client left: the bytes are lost */
		}
	}
	out_dropped += out_len - done;
	out_len = 0;
}

void port_uart_write(const uint8_t *data, size_t len)
{
	while (len > 0) {
		if (out_len == sizeof out_buf) {
			port_uart_flush();
		}
		size_t n = sizeof out_buf - out_len;
		n = n < len ? n : len;
		memcpy(out_buf + out_len, data, n);
		out_len += n;
		data += n;
		len -= n;
	}
}

enum mcu_reset_cause port_reset_cause(void) { return reset_cause; }

uint32_t port_reset_count(void) { return reset_count; }

void port_reset(enum mcu_reset_cause cause)
{
	reset_cause = cause;
	reset_count++;
	reset_requested = true; /* the main loop reboots once device_poll() has returned */
	if (verbose) {
		fprintf(stderr, "printer-mcu: reset (%s)\n", mcu_reset_cause_names[cause]);
	}
}

void port_irq_lock(void) {}

void port_irq_unlock(void) {}

/* -- the line ---------------------------------------------------------------------------- */

static int open_pty(char *path, size_t path_size)
{
	int master = posix_openpt(O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	if (master < 0 || grantpt(master) != 0 || unlockpt(master) != 0 ||
	    ptsname_r(master, path, path_size) != 0) {
		perror("printer-mcu: pty");
		return -1;
	}
	/* Our own slave, kept open: the line stays up between clients, and raw. */
	pty_slave_fd = open(path, O_RDWR | O_NOCTTY | O_CLOEXEC);
	struct termios raw;
	if (pty_slave_fd < 0 || tcgetattr(pty_slave_fd, &raw) != 0) {
		perror("printer-mcu: pty slave");
		return -1;
	}
	cfmakeraw(&raw);
	tcsetattr(pty_slave_fd, TCSANOW, &raw);
	return master;
}

static int open_listener(const char *spec, char *url, size_t url_size)
{
	char host[64];
	const char *colon = strrchr(spec, ':');
	if (colon == NULL || (size_t)(colon - spec) >= sizeof host) {
		fprintf(stderr, "printer-mcu: --tcp HOST:PORT, got %s\n", spec);
		return -1;
	}
	memcpy(host, spec, (size_t)(colon - spec));
	host[colon - spec] = '\0';
	struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(colon + 1))};
	if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) {
		fprintf(stderr, "printer-mcu: not an IPv4 address: %s\n", host);
		return -1;
	}
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	socklen_t len = sizeof addr;
	if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(fd, 4) != 0 ||
	    getsockname(fd, (struct sockaddr *)&addr, &len) != 0) {
		perror("printer-mcu: tcp");
		return -1;
	}
	snprintf(url, url_size, "socket://%s:%u", host, (unsigned)ntohs(addr.sin_port));
	return fd;
}

static void accept_client(void)
{
	int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0) {
		return;
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	line_fd = fd;
}

/* Read what the line holds into the device; false if the line is gone. */
static bool read_line(void)
{
	uint8_t buf[4096];
	for (;;) {
		ssize_t n = read(line_fd, buf, sizeof buf);
		if (n > 0) {
			last_heard_us = port_now_us();
			for (ssize_t i = 0; i < n; i++) {
				device_uart_rx_isr(buf[i]);
			}
			if ((size_t)n < sizeof buf) {
				return true;
			}
		} else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			return true;
		} else {
			return false;
		}
	}
}

static void on_signal(int sig)
{
	(void)sig;
	stopping = 1;
}

/* A UART with nobody listening loses what it sends; a pty keeps it for whoever opens it
 * next, who would then read seconds of stale frames first. So while no byte has come
 * from a host for a while, what the pty holds for one is dropped, once a second. */
static void drop_unread_output(void)
{
	uint64_t now_us = port_now_us();
	if (pty_slave_fd >= 0 && now_us - last_heard_us > 1000000u &&
	    now_us - last_flush_us > 1000000u) {
		tcflush(pty_slave_fd, TCIFLUSH);
		last_flush_us = now_us;
	}
}

/* -- main -------------------------------------------------------------------------------- */

static void boot(void)
{
	reset_requested = false;
	plant_init(port_now_us());
	device_boot();
}

int main(int argc, char **argv)
{
	const char *tcp = NULL;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--tcp") == 0 && i + 1 < argc) {
			tcp = argv[++i];
		} else if (strcmp(argv[i], "--pty") == 0) {
			tcp = NULL;
		} else if (strcmp(argv[i], "--verbose") == 0) {
			verbose = true;
		} else {
			fprintf(stderr, "usage: %s [--pty | --tcp HOST:PORT] [--verbose]\n", argv[0]);
			return 2;
		}
	}
	start_ns = monotonic_ns();
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	signal(SIGPIPE, SIG_IGN);

	char url[128];
	if (tcp != NULL) {
		listen_fd = open_listener(tcp, url, sizeof url);
		if (listen_fd < 0) {
			return 1;
		}
	} else {
		line_fd = open_pty(url, sizeof url);
		if (line_fd < 0) {
			return 1;
		}
	}
	printf("%s\n", url);
	fflush(stdout);

	boot();
	while (!stopping) {
		uint64_t now_us = port_now_us();
		plant_poll(now_us);
		uint64_t next_us = device_poll(now_us);
		if (reset_requested) {
			boot();
			continue;
		}
		uint64_t plant_us = plant_next_deadline();
		next_us = plant_us < next_us ? plant_us : next_us;
		drop_unread_output();

		struct pollfd fds[1];
		nfds_t n_fds = 0;
		if (line_fd >= 0) {
			fds[n_fds++] = (struct pollfd){.fd = line_fd, .events = POLLIN};
		} else if (listen_fd >= 0) {
			fds[n_fds++] = (struct pollfd){.fd = listen_fd, .events = POLLIN};
		}
		now_us = port_now_us();
		uint64_t wait_us = next_us > now_us ? next_us - now_us : 0;
		if (wait_us > 1000000u) {
			wait_us = 1000000u;
		}
		struct timespec timeout = {(time_t)(wait_us / 1000000u),
					   (long)(wait_us % 1000000u) * 1000L};
		int ready = ppoll(fds, n_fds, &timeout, NULL);
		if (ready <= 0) {
			continue;
		}
		if (line_fd >= 0 && (fds[0].revents & (POLLIN | POLLHUP | POLLERR))) {
			if (!read_line() && listen_fd >= 0) {
				close(line_fd); /* the TCP client left; the next one is the line */
				line_fd = -1;
			}
		} else if (listen_fd >= 0 && (fds[0].revents & POLLIN)) {
			accept_client();
		}
	}
	if (verbose) {
		const struct device_stats *s = device_get_stats();
		fprintf(stderr,
			"printer-mcu: %u frames in, %u out, %u retransmitted, %u corrupt, %u "
			"sessions, %lu bytes dropped\n",
			s->frames_received, s->frames_sent, s->retransmitted, s->corrupt, s->sessions,
			out_dropped);
	}
	if (line_fd >= 0) {
		close(line_fd);
	}
	if (pty_slave_fd >= 0) {
		close(pty_slave_fd);
	}
	return 0;
}
