/* socks5-connrate: the gateway's connection cycle straight to a SOCKS5 server, single thread.
 *
 *   socks5-connrate SOCKSHOST SOCKSPORT TARGET4 TPORT SECS MODE NAME
 *
 * MODE greet: per cycle connect to the server, send greeting + CONNECT in one write (as a
 *             pipelining gateway does), read the method reply and the CONNECT reply, read to
 *             EOF (the target accepts and closes at once), close.
 * MODE pre:   connections past the greeting are opened ahead in batches of BATCH (connect all,
 *             greet all, read all method replies), outside the timed part; a timed cycle is then
 *             CONNECT, its reply, read to EOF, close. Reports the rate over the timed cycles only
 *             (the ceiling when the greeting costs the cycle nothing) and the wall rate.
 * Prints the median / p90 of the cycle in microseconds.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 32
#define MAXC 2000000

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}
static void die(const char *m) { perror(m); exit(1); }
static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}
static void readn(int fd, unsigned char *b, size_t n) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = read(fd, b + got, n - got);
    if (r <= 0) die("read reply");
    got += (size_t)r;
  }
}

static struct sockaddr_in server;
static unsigned char connect_req[10];

static int dial(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
  if (fd < 0) die("socket");
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(fd, (struct sockaddr *)&server, sizeof server) < 0) die("connect");
  return fd;
}

/* CONNECT on a greeted connection, its reply, then EOF and close. */
static void finish(int fd) {
  unsigned char b[512];
  if (write(fd, connect_req, sizeof connect_req) != sizeof connect_req) die("write connect");
  readn(fd, b, 10);
  if (b[0] != 5 || b[1] != 0) { fprintf(stderr, "CONNECT refused: %d\n", b[1]); exit(1); }
  while (read(fd, b, sizeof b) > 0) {}
  close(fd);
}

int main(int argc, char **argv) {
  if (argc < 8) { fprintf(stderr, "usage: see the header of socks5-connrate.c\n"); return 2; }
  server.sin_family = AF_INET;
  server.sin_port = htons(atoi(argv[2]));
  inet_pton(AF_INET, argv[1], &server.sin_addr);
  struct in_addr t;
  inet_pton(AF_INET, argv[3], &t);
  unsigned short tp = htons(atoi(argv[4]));
  unsigned char req[] = {5, 1, 0, 1, 0, 0, 0, 0, 0, 0};
  memcpy(req + 4, &t, 4);
  memcpy(req + 8, &tp, 2);
  memcpy(connect_req, req, 10);
  double secs = atof(argv[5]);
  int pre = !strcmp(argv[6], "pre");
  static double cyc[MAXC];
  long n = 0;
  double timed = 0, t0 = now(), t1;
  static const unsigned char greeting[3] = {5, 1, 0};
  while ((t1 = now()) - t0 < secs && n < MAXC) {
    if (!pre) {
      unsigned char both[13], b[512];
      memcpy(both, greeting, 3);
      memcpy(both + 3, connect_req, 10);
      double c0 = now();
      int fd = dial();
      if (write(fd, both, sizeof both) != sizeof both) die("write");
      readn(fd, b, 12);
      if (b[1] != 0 || b[3] != 0) { fprintf(stderr, "refused\n"); exit(1); }
      while (read(fd, b, sizeof b) > 0) {}
      close(fd);
      cyc[n++] = now() - c0;
      timed += cyc[n - 1];
    } else {
      int fds[BATCH];
      unsigned char b[2];
      for (int i = 0; i < BATCH; i++) {
        fds[i] = dial();
        if (write(fds[i], greeting, 3) != 3) die("write greeting");
      }
      for (int i = 0; i < BATCH; i++) {
        readn(fds[i], b, 2);
        if (b[0] != 5 || b[1] != 0) { fprintf(stderr, "method refused\n"); exit(1); }
      }
      for (int i = 0; i < BATCH && n < MAXC; i++) {
        double c0 = now();
        finish(fds[i]);
        cyc[n++] = now() - c0;
        timed += cyc[n - 1];
      }
    }
  }
  t1 = now();
  qsort(cyc, n, sizeof cyc[0], cmp);
  printf("metric=%s value=%.0f unit=conn/s count=%ld seconds=%.3f wall_rate=%.0f median_us=%.0f p90_us=%.0f\n",
         argv[7], n / timed, n, t1 - t0, n / (t1 - t0), cyc[n / 2] * 1e6, cyc[n * 9 / 10] * 1e6);
  return 0;
}
