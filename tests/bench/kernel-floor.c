// Kernel floor for the broker's two paths on this machine (issue #19; tests/Samsa.Benchmarks/RESULTS.md
// "One broker's CPU per GB"). Build and run:
//   gcc -O2 -o /tmp/kernel-floor tests/bench/kernel-floor.c
//   /tmp/kernel-floor produce 1000000000 /tmp/floor.dat; /tmp/kernel-floor consume 1000000000 /tmp/floor.dat
// What it prints is what the kernel work alone costs: a single-threaded blocking server that
// (produce) receives length-prefixed 16 KiB frames in 64 KiB reads, pwrites each payload to a file
// and answers every read's frames with one send of 60-byte replies, or (consume) sendfiles a file
// in 1 MiB ranges, each after a 64-byte header. The client is a forked process. Prints the
// server's CPU seconds per GB (getrusage).
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/sendfile.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <sys/time.h>

static double cpu(void) { struct rusage r; getrusage(RUSAGE_SELF, &r);
  return r.ru_utime.tv_sec + r.ru_utime.tv_usec / 1e6 + r.ru_stime.tv_sec + r.ru_stime.tv_usec / 1e6; }
static double now(void) { struct timeval t; gettimeofday(&t, 0); return t.tv_sec + t.tv_usec / 1e6; }
static void full_write(int fd, const char *p, size_t n) { while (n) { ssize_t w = write(fd, p, n); if (w <= 0) { perror("write"); exit(1); } p += w; n -= w; } }
static size_t full_read(int fd, char *p, size_t n) { size_t got = 0; while (got < n) { ssize_t r = read(fd, p + got, n - got); if (r <= 0) break; got += r; } return got; }

int main(int argc, char **argv) {
  if (argc < 4) { fprintf(stderr, "floor produce|consume BYTES FILE [port]\n"); return 2; }
  int produce = strcmp(argv[1], "produce") == 0; long long total = atoll(argv[2]); const char *path = argv[3];
  int port = argc > 4 ? atoi(argv[4]) : 0; const int FRAME = 16384, INFLIGHT = 5;
  int ls = socket(AF_INET, SOCK_STREAM, 0), one = 1; setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
  if (bind(ls, (void *)&a, sizeof a) || listen(ls, 1)) { perror("bind"); return 1; }
  socklen_t alen = sizeof a; getsockname(ls, (void *)&a, &alen); // port 0: the one the kernel chose
  if (!produce) { // the file to serve, in the page cache
    int f = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644); char *b = calloc(1, 1 << 20);
    for (long long w = 0; w < total; w += 1 << 20) full_write(f, b, 1 << 20);
    close(f); free(b);
  }
  pid_t child = fork();
  if (child == 0) { // client
    int s = socket(AF_INET, SOCK_STREAM, 0); setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(s, (void *)&a, sizeof a)) { perror("connect"); exit(1); }
    char *buf = calloc(1, 1 << 20);
    if (produce) {
      long long frames = total / FRAME, sent = 0, acked = 0; char reply[60];
      *(int *)buf = htonl(FRAME);
      while (acked < frames) {
        while (sent < frames && sent - acked < INFLIGHT) { full_write(s, buf, 4 + FRAME); sent++; }
        if (full_read(s, reply, 60) != 60) break;
        acked++;
      }
    } else {
      long long got = 0; char hdr[64];
      while (got < total) { full_write(s, hdr, 64); if (full_read(s, hdr, 64) != 64) break;
        size_t want = total - got < (1 << 20) ? total - got : (1 << 20); got += full_read(s, buf, want); }
    }
    exit(0);
  }
  int c = accept(ls, 0, 0); setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  double c0 = cpu(), t0 = now(); long long syscalls = 0;
  if (produce) {
    int f = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644); char *in = malloc(1 << 17); size_t have = 0; long long pos = 0, frames = 0;
    char replies[60 * 64]; memset(replies, 0, sizeof replies);
    while (pos < total) {
      ssize_t r = recv(c, in + have, (1 << 16), 0); syscalls++; if (r <= 0) break; have += r;
      size_t off = 0; int answered = 0;
      while (have - off >= 4 + (size_t)FRAME) { pwrite(f, in + off + 4, FRAME, pos); syscalls++; pos += FRAME; off += 4 + FRAME; answered++; frames++; }
      memmove(in, in + off, have - off); have -= off;
      if (answered) { full_write(c, replies, 60 * answered); syscalls++; }
    }
    close(f);
  } else {
    int f = open(path, O_RDONLY); long long pos = 0; char hdr[64] = {0};
    while (pos < total) {
      if (full_read(c, hdr, 64) != 64) break;
      full_write(c, hdr, 64); syscalls += 2;
      size_t n = total - pos < (1 << 20) ? total - pos : (1 << 20); off_t o = pos;
      while (n) { ssize_t w = sendfile(c, f, &o, n); syscalls++; if (w <= 0) { perror("sendfile"); exit(1); } n -= w; }
      pos = o;
    }
  }
  double c1 = cpu(), t1 = now(); int st; waitpid(child, &st, 0);
  printf("%s: %.0f MB/s, server CPU %.2f s/GB, syscalls %lld\n", argv[1], total / 1e6 / (t1 - t0), (c1 - c0) / (total / 1e9), syscalls);
  unlink(path); return 0;
}
